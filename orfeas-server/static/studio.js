// Batch Studio: wires the page (index.html) to the server of docs/reference.md §3. Plain ES modules,
// no build step; three.js comes from /static/vendor through the import map and is loaded only
// when the first preview opens.

import { cancelJob, getBatch, getGpuStats, getHealth, listJobs, submitBatch } from './api.js';
import { GpuMonitor } from './gpu.js';
import { JobBoard, PREVIEWABLE } from './jobs.js';
import { ReconnectingSocket } from './socket.js';
import { UploadQueue } from './uploads.js';
import { announce, formatCount } from './util.js';

const $ = (id) => document.getElementById(id);
const SETTINGS_KEY = 'orfeas.studio.settings';
const POLL_WHILE_OFFLINE_MS = 3000;

const dom = {
  form: $('batch-form'),
  start: $('start-button'),
  formError: $('form-error'),
  formats: $('format-select'),
  quality: $('quality-select'),
  method: $('method-select'),
  background: $('background-select'),
  backgroundHint: $('background-hint'),
  methodHint: $('method-hint'),
  sizeHint: $('size-hint'),
  width: $('width-mm'),
  relief: $('depth-mm'),
  base: $('base-mm'),
  batchSize: $('batch-size'),
  connection: document.querySelector('[data-testid="connection"]'),
  serverInfo: $('server-info'),
  preview: document.querySelector('[data-testid="preview"]'),
  viewport: $('viewport'),
  previewMessage: $('preview-message'),
  previewCaption: $('preview-caption'),
  previewReset: $('preview-reset'),
  previewRotate: $('preview-rotate'),
  previewWire: $('preview-wire'),
};

const board = new JobBoard({
  list: $('job-list'),
  stats: document.querySelector('[data-testid="stats-bar"]'),
  downloadAll: $('download-all'),
  batchLabel: $('batch-label'),
  onPreview: (job) => showPreview(job),
  onCancel: (jobId) => cancelJob(jobId),
});
const gpu = new GpuMonitor(document.querySelector('[data-testid="gpu-monitor"]'));
const uploads = new UploadQueue({
  dropZone: $('drop-zone'),
  input: $('file-input'),
  list: $('pending'),
  head: $('pending-head'),
  count: $('pending-count'),
  clear: $('clear-pending'),
  rejected: $('rejected'),
  onChange: () => updateStartButton(),
});

let uploading = false;

// ---------- settings ----------

function restoreSettings() {
  let saved;
  try { saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? 'null'); } catch { saved = null; }
  if (!saved) return;
  if (Array.isArray(saved.formats) && saved.formats.length) {
    for (const option of dom.formats.options) option.selected = saved.formats.includes(option.value);
  }
  // Settings saved before the shape choice existed name the same values under `depth`.
  if (saved.method === undefined && typeof saved.depth === 'string') saved.method = saved.depth;
  for (const [node, key] of [[dom.quality, 'quality'], [dom.method, 'method'], [dom.background, 'background']]) {
    if (typeof saved[key] === 'string' && [...node.options].some((o) => o.value === saved[key])) node.value = saved[key];
  }
  for (const [node, key] of [[dom.width, 'width_mm'], [dom.relief, 'depth_mm'], [dom.base, 'base_mm']]) {
    if (Number.isFinite(saved[key])) node.value = String(saved[key]);
  }
}

function readSettings() {
  return {
    formats: [...dom.formats.selectedOptions].map((o) => o.value),
    quality: dom.quality.value,
    method: dom.method.value,
    background: dom.background.value,
    width_mm: dom.width.valueAsNumber,
    depth_mm: dom.relief.valueAsNumber,
    base_mm: dom.base.valueAsNumber,
  };
}

function saveSettings(settings) {
  try { localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings)); } catch { /* private mode */ }
}

// ---------- starting a batch ----------

function updateStartButton(uploadFraction) {
  const n = uploads.items.length;
  dom.start.disabled = uploading || n === 0;
  if (uploading) {
    dom.start.textContent = uploadFraction === undefined ? 'Uploading…' : `Uploading ${Math.round(uploadFraction * 100)} %…`;
  } else {
    dom.start.textContent = n === 0 ? 'Add images to start' : `Generate ${n} model${n === 1 ? '' : 's'}`;
  }
}

function showFormError(message) {
  dom.formError.textContent = message ?? '';
  dom.formError.hidden = !message;
}

/** Loose file-name comparison, because the server may sanitise upload names. */
const looseName = (name) => String(name).toLowerCase().replace(/[^a-z0-9.]+/g, '');

dom.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showFormError(null);
  const settings = readSettings();
  if (settings.formats.length === 0) {
    showFormError('Choose at least one output format.');
    dom.formats.focus();
    return;
  }
  for (const input of [dom.width, dom.relief, dom.base, dom.batchSize]) {
    if (!input.checkValidity()) {
      showFormError(`${input.labels[0].textContent}: ${input.validationMessage}`);
      input.focus();
      return;
    }
  }
  if (uploads.items.length === 0) return;
  saveSettings(settings);

  const items = [...uploads.items];
  const object = isObject(settings.method);
  uploading = true;
  updateStartButton(0);
  try {
    // The mask comes along with every model (it is small) so that each card shows its cut-out.
    const formats = settings.background === 'none' || settings.formats.includes('mask.png')
      ? settings.formats : [...settings.formats, 'mask.png'];
    const answer = await submitBatch(items.map((i) => i.file), {
      format_type: formats.join(','),
      background: settings.background,
      quality: settings.quality,
      method: settings.method,
      width_mm: settings.width_mm,
      // An object's size is its largest extent alone; relief and base are the 2.5D shape's.
      depth_mm: object ? undefined : settings.depth_mm,
      base_mm: object ? undefined : settings.base_mm,
      batch_size: Number.isFinite(dom.batchSize.valueAsNumber) ? dom.batchSize.valueAsNumber : undefined,
    }, (fraction) => updateStartButton(fraction));
    await acceptBatch(answer, items);
  } catch (error) {
    showFormError(error.message);
    for (const r of error.body?.rejected ?? []) uploads.reject(r.filename, r.error, 'server');
  } finally {
    uploading = false;
    updateStartButton();
  }
});

/** After a 202: show rejected files, create the cards (by job id), hand thumbnails over, clear the selection. */
async function acceptBatch(answer, items) {
  for (const r of answer.rejected ?? []) uploads.reject(r.filename, r.error, 'server');
  const ids = (answer.job_ids ?? []).map(String);
  board.setCurrentBatch(answer.batch_id);
  // The batch's job objects give each card its file name; events that arrived meanwhile are not undone.
  let known = [];
  try {
    const batch = await getBatch(answer.batch_id);
    known = Array.isArray(batch?.jobs) ? batch.jobs : await listJobs();
  } catch { /* the WebSocket fills the cards in */ }
  const byId = new Map(known.map((job) => [String(job.job_id), job]));
  const used = new Set();
  for (const id of ids) {
    const job = byId.get(id) ?? { job_id: id, batch_id: answer.batch_id, status: 'queued', stage: 'queued' };
    board.update(job);
    const name = board.jobs.get(id)?.filename;
    const item = items.find((i) => !used.has(i) && i.file.name === name)
      ?? items.find((i) => !used.has(i) && looseName(i.file.name) === looseName(name));
    if (item) {
      used.add(item);
      board.setThumb(id, item.url);
    }
  }
  for (const item of items) if (!used.has(item)) URL.revokeObjectURL(item.url);
  uploads.clear({ keepUrls: true });
  announce(`Batch started: ${ids.length} job${ids.length === 1 ? '' : 's'}${answer.rejected?.length ? `, ${answer.rejected.length} rejected` : ''}.`);
  $('jobs-heading').focus();
}

// ---------- live updates ----------

let refreshGpuTimer = 0;
/** The server sends gpu_stats only while work runs; read it once more when things settle. */
function refreshGpuSoon() {
  clearTimeout(refreshGpuTimer);
  refreshGpuTimer = setTimeout(() => getGpuStats().then((s) => gpu.render(s)).catch(() => {}), 600);
}

function onEvent(name, data) {
  switch (name) {
    case 'snapshot':
      board.replaceAll(Array.isArray(data.jobs) ? data.jobs : []);
      if (data.gpu_stats ?? data.gpu) gpu.render(data.gpu_stats ?? data.gpu);
      autoPreview();
      break;
    case 'generation_progress':
      board.update(data);
      break;
    case 'generation_complete':
      board.update({ ...data, status: 'complete', stage: 'complete', progress: 100 });
      autoPreview();
      refreshGpuSoon();
      break;
    case 'generation_error':
      board.update({ ...data, status: 'error', stage: 'error' });
      refreshGpuSoon();
      break;
    case 'generation_cancelled':
      board.update({ ...data, status: 'cancelled', stage: 'cancelled' });
      refreshGpuSoon();
      break;
    case 'batch_progress':
      if (data.batch_id && !board.currentBatch) board.setCurrentBatch(String(data.batch_id));
      break;
    case 'gpu_stats':
      gpu.render(data);
      break;
    default:
      break; // Events this page does not know are fine: the contract lists a minimum.
  }
}

let pollTimer = 0;
function setConnection(state, retryInMs) {
  dom.connection.dataset.state = state;
  const text = dom.connection.querySelector('.connection-text');
  if (state === 'open') text.textContent = 'Live';
  else if (state === 'connecting') text.textContent = 'Connecting…';
  else text.textContent = `Offline · retrying in ${Math.max(1, Math.round(retryInMs / 1000))} s`;
  // While the socket is down, keep the cards current over plain HTTP.
  if (state === 'open') {
    clearInterval(pollTimer);
    pollTimer = 0;
  } else if (state === 'closed' && !pollTimer) {
    pollTimer = setInterval(() => {
      listJobs().then((jobs) => board.replaceAll(jobs)).catch(() => {});
    }, POLL_WHILE_OFFLINE_MS);
  }
}

// ---------- preview ----------

let viewer = null;
let viewerFailed = null;
let previewRequested = false;

function setPreviewMessage(title, detail) {
  dom.previewMessage.hidden = !title;
  dom.previewMessage.replaceChildren();
  if (!title) return;
  const strong = document.createElement('strong');
  strong.textContent = title;
  const p1 = document.createElement('p');
  p1.append(strong);
  dom.previewMessage.append(p1);
  if (detail) {
    const p2 = document.createElement('p');
    p2.className = 'muted';
    p2.textContent = detail;
    dom.previewMessage.append(p2);
  }
}

async function ensureViewer() {
  if (viewer) return viewer;
  if (viewerFailed) throw viewerFailed;
  try {
    const { ModelViewer } = await import('./preview.js');
    viewer = new ModelViewer(dom.viewport);
    return viewer;
  } catch (error) {
    viewerFailed = new Error(`The 3D preview needs WebGL, which this browser could not start (${error.message}).`);
    throw viewerFailed;
  }
}

async function showPreview(job) {
  const found = PREVIEWABLE.map((f) => job.outputs.find((o) => o.format === f)).find(Boolean);
  if (!found) return;
  // An object is shown from the front and turns all the way round; a relief lies like a tile.
  const output = { ...found, object: job.method === 'triposr' };
  previewRequested = true;
  dom.preview.dataset.state = 'loading';
  dom.preview.dataset.jobId = job.job_id;
  board.setPreviewing(job.job_id);
  setPreviewMessage(`Loading ${job.filename}…`, `${output.format.toUpperCase()} from the server`);
  dom.previewCaption.textContent = '';
  try {
    const v = await ensureViewer();
    const facts = await v.load(output, (fraction) => {
      setPreviewMessage(`Loading ${job.filename}… ${Math.round(fraction * 100)} %`, `${output.format.toUpperCase()} from the server`);
    });
    if (dom.preview.dataset.jobId !== job.job_id) return;
    v.renderNow();
    setPreviewMessage(null);
    dom.preview.dataset.state = 'ready';
    dom.preview.dataset.format = output.format;
    dom.preview.dataset.kind = output.object ? 'object' : 'relief';
    dom.preview.dataset.vertexColors = String(facts.vertexColors);
    dom.preview.dataset.triangles = String(facts.triangles);
    for (const b of [dom.previewReset, dom.previewRotate, dom.previewWire]) b.disabled = false;
    const size = `${facts.widthMm.toFixed(0)} × ${facts.heightMm.toFixed(0)} × ${facts.thicknessMm.toFixed(1)} mm`;
    dom.previewCaption.replaceChildren();
    const name = document.createElement('strong');
    name.textContent = job.filename;
    dom.previewCaption.append(name, ` · ${output.format.toUpperCase()} · ${formatCount(facts.triangles)} triangles · ${size}`);
    dom.viewport.setAttribute('aria-label', `3D preview of ${job.filename}: ${size}. Drag to orbit, scroll to zoom, arrow keys pan.`);
  } catch (error) {
    if (error.message === 'superseded' || dom.preview.dataset.jobId !== job.job_id) return;
    dom.preview.dataset.state = 'error';
    setPreviewMessage('Could not show this model', error.message);
  }
}

/** Shows the first finished model by itself, until the user picked one. */
function autoPreview() {
  if (previewRequested) return;
  const job = board.firstPreviewable();
  if (job) showPreview(job);
}

dom.previewReset.addEventListener('click', () => viewer?.resetView());
for (const [button, apply] of [[dom.previewRotate, (on) => viewer?.setAutoRotate(on)], [dom.previewWire, (on) => viewer?.setWireframe(on)]]) {
  button.addEventListener('click', () => {
    const on = button.getAttribute('aria-pressed') !== 'true';
    button.setAttribute('aria-pressed', String(on));
    apply(on);
  });
}

// ---------- start ----------

const OBJECT_METHODS = new Set(['triposr']);
const isObject = (method) => OBJECT_METHODS.has(method) || (method === '' && OBJECT_METHODS.has(serverMethod));
let serverMethod = '';

/** Why the server cannot run a method, shown beside the disabled choice. */
function unavailableReason(method) {
  if (method === 'triposr') {
    return 'Full 3D object needs TripoSR weights on the server: run `orfeas fetch-model --model triposr` there and restart it (or start it with --method triposr --weights DIR).';
  }
  if (method === 'depth-anything') {
    return 'Depth Anything needs weights on the server: run `orfeas fetch-model` there and restart it (or start it with --weights PATH).';
  }
  return `This server cannot run ${method}.`;
}

/**
 * `/api/health` lists the methods this server loaded weights for; the others stay visible but
 * disabled, with what would enable them. Older servers only name their one `depth` method.
 */
function limitMethodChoices(health) {
  serverMethod = String(health.method ?? health.depth ?? '');
  const runnable = Array.isArray(health.methods) ? new Set(health.methods.map(String)) : new Set(['auto', serverMethod]);
  for (const option of dom.method.options) {
    if (!option.value) {
      option.textContent = serverMethod ? `Server default (${serverMethod})` : 'Server default';
      continue;
    }
    const usable = runnable.has(option.value);
    option.disabled = !usable;
    option.title = usable ? '' : unavailableReason(option.value);
    if (usable) delete option.dataset.reason;
    else option.dataset.reason = option.title;
  }
  if (dom.method.selectedOptions[0]?.disabled) dom.method.value = '';
  updateShapeFields();
  limitBackgroundChoices(health);
}

const BACKGROUND_HINT = dom.backgroundHint.textContent;

/** `/api/health` lists the backgrounds this server can use; BiRefNet needs its weights there. */
function limitBackgroundChoices(health) {
  if (!Array.isArray(health.backgrounds)) return;
  const usable = new Set(health.backgrounds.map(String));
  for (const option of dom.background.options) {
    option.disabled = !usable.has(option.value);
    option.title = option.disabled
      ? 'Background removal needs the BiRefNet weights on the server: run `orfeas fetch-model --model birefnet-lite` there and restart it (or start it with --segmenter-weights DIR).'
      : '';
  }
  if (dom.background.selectedOptions[0]?.disabled) dom.background.value = 'auto';
  const off = [...dom.background.options].find((o) => o.value === 'birefnet' && o.disabled);
  dom.backgroundHint.textContent = off ? `${BACKGROUND_HINT} ${off.title}` : BACKGROUND_HINT;
}

/** The relief-only size fields are off while an object is chosen; the hint says why. */
function updateShapeFields() {
  const object = isObject(dom.method.value);
  dom.relief.disabled = object;
  dom.base.disabled = object;
  dom.sizeHint.textContent = object
    ? "A full 3D object's largest side is the width; relief and base are for reliefs."
    : "Height follows the image's aspect ratio.";
  const reason = [...dom.method.options].find((o) => o.value === 'triposr')?.dataset.reason;
  dom.methodHint.textContent = reason ?? 'A relief has a flat back; a full 3D object (TripoSR) has every side.';
}

dom.method.addEventListener('change', () => updateShapeFields());

async function loadHealth() {
  try {
    const health = await getHealth();
    const method = health.method ?? health.depth;
    const parts = [`orfeas ${health.version}`, health.device, `${health.slots} slot${health.slots === 1 ? '' : 's'}`, method ? `method ${method}` : ''];
    dom.serverInfo.textContent = parts.filter(Boolean).join(' · ');
    limitMethodChoices(health);
    dom.serverInfo.dataset.ready = 'true';
    if (Number.isInteger(health.slots) && health.slots > 0) {
      dom.batchSize.max = String(health.slots);
      dom.batchSize.placeholder = `All ${health.slots} slots`;
    }
  } catch (error) {
    dom.serverInfo.textContent = `Server not answering: ${error.message}`;
  }
}

restoreSettings();
updateShapeFields();
updateStartButton();
loadHealth();
getGpuStats().then((s) => gpu.render(s)).catch((error) => gpu.unavailable(`No GPU reading: ${error.message}`));
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
new ReconnectingSocket(wsUrl, { onEvent, onState: setConnection }).connect();
