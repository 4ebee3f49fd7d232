// Small DOM and formatting helpers shared by the Batch Studio modules.

/**
 * Creates an element: `el('button', { class: 'btn', onclick }, 'Text', child)`.
 * Attributes whose value is `false`, `null` or `undefined` are left out; `on*` functions become listeners.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** `1536` → `1.5 KB`. */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** Seconds as `0.8 s`, `12 s` or `3 min 5 s`. */
export function formatSeconds(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** `12345` → `12,345` in the reader's locale. */
export function formatCount(n) {
  return Number.isFinite(n) ? n.toLocaleString() : '';
}

/** Stage names from the pipeline (`depth_estimation`) made readable (`Depth estimation`). */
export function stageLabel(stage) {
  if (!stage) return '';
  const text = String(stage).replace(/[_-]+/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const announcer = () => document.getElementById('announcer');

/** Tells screen-reader users about something that happened out of their focus (polite). */
export function announce(message) {
  const region = announcer();
  if (!region) return;
  region.textContent = '';
  // A fresh text node after a tick makes repeated identical messages announced again.
  setTimeout(() => { region.textContent = message; }, 30);
}
