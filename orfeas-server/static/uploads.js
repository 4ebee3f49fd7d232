// File selection before a batch starts: drag-and-drop, the file picker and paste, with type and
// size checks, thumbnails, and removal of single files. Files the page refuses, and files the
// server rejects, are listed with the reason.

import { el, formatBytes } from './util.js';

const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/bmp', 'image/x-ms-bmp', 'image/tiff', 'image/gif']);
const IMAGE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'webp', 'bmp', 'tif', 'tiff', 'gif']);
/** The server's defaults (issue #4): 50 MB per file, 100 files per batch. */
export const MAX_FILE_BYTES = 50 * 1024 * 1024;
export const MAX_FILES = 100;

/** Why a file cannot be sent, or null when it can. */
export function checkFile(file) {
  const ext = file.name.includes('.') ? file.name.split('.').pop().toLowerCase() : '';
  const typeOk = IMAGE_TYPES.has(file.type);
  const extOk = IMAGE_EXTENSIONS.has(ext);
  if (!typeOk && !(file.type === '' && extOk)) {
    const what = file.type ? file.type : (ext ? `.${ext}` : 'unknown type');
    return `Not a supported image (${what}). Use PNG, JPEG, WebP, BMP, TIFF or GIF.`;
  }
  if (file.size === 0) return 'The file is empty.';
  if (file.size > MAX_FILE_BYTES) return `Too large (${formatBytes(file.size)}); the limit is ${formatBytes(MAX_FILE_BYTES)} per file.`;
  return null;
}

let nextId = 0;

export class UploadQueue {
  /**
   * @param {{dropZone: HTMLElement, input: HTMLInputElement, list: HTMLElement, head: HTMLElement,
   *          count: HTMLElement, clear: HTMLElement, rejected: HTMLElement, onChange(): void}} dom
   */
  constructor(dom) {
    this.dom = dom;
    this.items = [];
    dom.input.addEventListener('change', () => {
      this.add([...dom.input.files]);
      dom.input.value = '';
    });
    dom.clear.addEventListener('click', () => this.clear());
    this.wireDrop();
    document.addEventListener('paste', (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        this.add(files);
      }
    });
  }

  wireDrop() {
    const zone = this.dom.dropZone;
    let depth = 0;
    const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
    zone.addEventListener('dragenter', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragover', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
    });
    zone.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove('dragging');
    });
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      depth = 0;
      zone.classList.remove('dragging');
      this.add([...(event.dataTransfer?.files ?? [])]);
    });
    // A file dropped next to the zone must not make the browser navigate away from the page.
    for (const type of ['dragover', 'drop']) {
      window.addEventListener(type, (event) => {
        if (hasFiles(event) && !zone.contains(event.target)) event.preventDefault();
      });
    }
  }

  /** Adds files that pass the checks; lists the others with the reason. */
  add(files) {
    for (const file of files) {
      const problem = checkFile(file);
      if (problem) {
        this.reject(file.name, problem, 'client');
        continue;
      }
      if (this.items.some((i) => i.file.name === file.name && i.file.size === file.size && i.file.lastModified === file.lastModified)) {
        continue;
      }
      if (this.items.length >= MAX_FILES) {
        this.reject(file.name, `A batch holds at most ${MAX_FILES} files; start this batch first.`, 'client');
        continue;
      }
      const item = { id: `f${nextId++}`, file, url: URL.createObjectURL(file) };
      this.items.push(item);
      this.dom.list.append(this.renderItem(item));
    }
    this.changed();
  }

  renderItem(item) {
    const ext = item.file.name.split('.').pop();
    const img = el('img', { src: item.url, alt: '', loading: 'lazy' });
    img.addEventListener('error', () => img.replaceWith(el('div', { class: 'thumb-fallback' }, ext)));
    return el('li', { 'data-file-id': item.id, 'data-testid': 'pending-file', title: item.file.name },
      img,
      el('div', { class: 'pending-name' }, item.file.name),
      el('div', { class: 'pending-size' }, formatBytes(item.file.size)),
      el('button', {
        type: 'button', class: 'remove', 'data-testid': 'remove-file', 'aria-label': `Remove ${item.file.name}`,
        onclick: () => this.remove(item.id),
      }, '×'));
  }

  remove(id, { keepUrl = false } = {}) {
    const index = this.items.findIndex((i) => i.id === id);
    if (index < 0) return;
    const [item] = this.items.splice(index, 1);
    if (!keepUrl) URL.revokeObjectURL(item.url);
    this.dom.list.querySelector(`[data-file-id="${id}"]`)?.remove();
    this.changed();
    // Keep keyboard users somewhere sensible after their focused button vanished.
    if (!this.dom.list.contains(document.activeElement)) {
      const next = this.dom.list.querySelectorAll('.remove')[Math.min(index, this.items.length - 1)];
      if (next) next.focus();
    }
  }

  clear({ keepUrls = false } = {}) {
    for (const item of this.items) if (!keepUrls) URL.revokeObjectURL(item.url);
    this.items = [];
    this.dom.list.replaceChildren();
    this.changed();
  }

  /** Lists a file that will not be (or was not) processed, with why. */
  reject(filename, reason, source) {
    const notice = el('div', { class: 'notice', 'data-testid': 'rejected-file', 'data-source': source },
      el('div', { class: 'notice-text' },
        el('strong', {}, filename || '(unnamed file)'),
        el('span', { class: 'notice-reason' }, source === 'server' ? `Rejected by the server: ${reason}` : reason)),
      el('button', { type: 'button', 'aria-label': `Dismiss the message about ${filename}`, onclick: () => notice.remove() }, '×'));
    this.dom.rejected.append(notice);
  }

  clearRejected() {
    this.dom.rejected.replaceChildren();
  }

  changed() {
    this.dom.head.hidden = this.items.length === 0;
    this.dom.count.textContent = String(this.items.length);
    this.dom.onChange();
  }
}
