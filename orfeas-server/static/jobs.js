// The job board: one card per job, keyed by job id (never by position), updated in place from
// WebSocket events, HTTP answers and `snapshot`s; plus the stats bar and "download all".

import { batchZipUrl } from './api.js';
import { announce, baseName, el, formatBytes, formatCount, formatSeconds, stageLabel } from './util.js';

const TERMINAL = new Set(['complete', 'error', 'cancelled']);
const STATUS_LABEL = {
  queued: 'Queued', processing: 'Processing', complete: 'Complete', error: 'Failed', cancelled: 'Cancelled',
};
/** Formats the viewer can show, best first. */
const PREVIEWABLE = ['glb', 'stl'];

/** Maps the spellings a server might use onto the five card states of CONTRACT.md §3. */
export function normaliseStatus(status, stage) {
  const s = String(status ?? stage ?? '').toLowerCase();
  if (s === 'failed' || s === 'error') return 'error';
  if (s === 'canceled' || s === 'cancelled') return 'cancelled';
  if (s === 'complete' || s === 'completed' || s === 'done') return 'complete';
  if (s === 'queued' || s === 'pending' || s === '') return 'queued';
  return 'processing';
}

/** The download URL of one output; built from its file name when the server gave none. */
function outputUrl(jobId, output) {
  if (output.url) return output.url;
  const name = baseName(output.filename ?? output.file ?? output.path ?? '');
  return `/api/download/${encodeURIComponent(jobId)}/${encodeURIComponent(name)}`;
}

function normaliseOutputs(jobId, outputs) {
  if (!Array.isArray(outputs)) return [];
  return outputs.map((o) => ({
    format: String(o.format ?? '').toLowerCase() || baseName(o.url ?? o.path ?? '').split('.').pop(),
    url: outputUrl(jobId, o),
    bytes: Number(o.bytes),
  }));
}

function timeOf(value) {
  if (value === null || value === undefined || value === '') return NaN;
  if (typeof value === 'number') return value < 1e12 ? value * 1000 : value;
  return Date.parse(value);
}

export class JobBoard {
  /**
   * @param {{list: HTMLElement, stats: HTMLElement, downloadAll: HTMLAnchorElement, batchLabel: HTMLElement,
   *          onPreview(job: object): void, onCancel(jobId: string): Promise<void>}} options
   */
  constructor(options) {
    this.options = options;
    this.jobs = new Map();
    this.cards = new Map();
    this.thumbs = new Map();
    this.batchOrder = new Map();
    this.seq = 0;
    this.previewing = null;
    this.currentBatch = null;
  }

  /** Remembers a local thumbnail (an object URL of the uploaded file) for a job. */
  setThumb(jobId, url) {
    this.thumbs.set(jobId, url);
    const card = this.cards.get(jobId);
    if (card) this.renderThumb(card, this.jobs.get(jobId));
  }

  /** The batch whose ZIP "download all" fetches: the one started last. */
  setCurrentBatch(batchId) {
    this.currentBatch = batchId;
    this.refreshSummary();
  }

  /** A `snapshot` (or a full listing): the server's word replaces ours; unknown cards go. */
  replaceAll(jobList) {
    const seen = new Set();
    for (const raw of jobList) {
      const job = this.toJob(raw);
      if (!job) continue;
      seen.add(job.job_id);
      this.store(job, true);
    }
    for (const id of [...this.jobs.keys()]) {
      if (!seen.has(id)) this.remove(id);
    }
    this.reorder();
    this.refreshSummary();
  }

  /**
   * Merges a partial job (an event's data or an HTTP answer). Updates that would move a job
   * backwards (progress after its terminal event, queued after processing) are ignored, so
   * events that arrive out of order cannot undo a finished card.
   */
  update(partial) {
    const job = this.toJob(partial);
    if (!job) return;
    const isNew = !this.jobs.has(job.job_id);
    this.store(job, false);
    if (isNew) this.reorder();
    this.refreshSummary();
  }

  jobsOfBatch(batchId) {
    return [...this.jobs.values()].filter((j) => j.batch_id === batchId);
  }

  toJob(raw) {
    const id = raw?.job_id ?? raw?.id;
    if (id === undefined || id === null) return null;
    const jobId = String(id);
    const job = { job_id: jobId };
    if (raw.batch_id !== undefined) job.batch_id = String(raw.batch_id);
    const name = raw.filename ?? raw.input;
    if (name) job.filename = baseName(name);
    if (raw.status !== undefined || raw.stage !== undefined) job.status = normaliseStatus(raw.status, raw.stage);
    if (raw.stage !== undefined && raw.stage !== null) job.stage = String(raw.stage);
    if (raw.progress !== undefined && raw.progress !== null) job.progress = Math.max(0, Math.min(100, Number(raw.progress) || 0));
    if (raw.outputs !== undefined) job.outputs = normaliseOutputs(jobId, raw.outputs);
    if (raw.error !== undefined) job.error = raw.error ? String(raw.error) : null;
    if (raw.triangles !== undefined && raw.triangles !== null) job.triangles = Number(raw.triangles);
    if (raw.seconds !== undefined) job.seconds = Number(raw.seconds);
    if (raw.depth !== undefined) job.depth = raw.depth;
    if (raw.created_at !== undefined) job.created_at = raw.created_at;
    if (raw.finished_at !== undefined) job.finished_at = raw.finished_at;
    return job;
  }

  store(incoming, authoritative) {
    const id = incoming.job_id;
    const current = this.jobs.get(id);
    let next;
    if (!current) {
      next = { status: 'queued', progress: 0, stage: 'queued', outputs: [], error: null, ...incoming, seq: this.seq++ };
    } else if (authoritative) {
      next = { ...current, ...incoming };
    } else {
      next = { ...current };
      const wasTerminal = TERMINAL.has(current.status);
      const incomingTerminal = TERMINAL.has(incoming.status);
      for (const [key, value] of Object.entries(incoming)) {
        if (['status', 'stage', 'progress'].includes(key)) continue;
        next[key] = value;
      }
      if (incomingTerminal || (!wasTerminal && incoming.status !== undefined)) {
        if (!wasTerminal && !incomingTerminal && current.status === 'processing' && incoming.status === 'queued') {
          // A late "queued" after work started: keep processing.
        } else {
          next.status = incoming.status ?? next.status;
          if (incoming.stage !== undefined) next.stage = incoming.stage;
        }
        if (incoming.progress !== undefined) {
          next.progress = incomingTerminal ? incoming.progress : Math.max(current.progress ?? 0, incoming.progress);
        }
      }
    }
    if (next.status === 'complete') next.progress = 100;
    if (!next.batch_id) next.batch_id = current?.batch_id ?? '';
    if (!next.filename) next.filename = current?.filename ?? next.job_id;
    this.jobs.set(id, next);
    this.noteBatch(next);

    if (!authoritative && current && !TERMINAL.has(current.status) && TERMINAL.has(next.status)) {
      announce(`${next.filename}: ${STATUS_LABEL[next.status].toLowerCase()}`);
    }
    let card = this.cards.get(id);
    if (!card) {
      card = this.createCard(next);
      this.cards.set(id, card);
    }
    this.renderCard(card, next);
  }

  noteBatch(job) {
    if (!job.batch_id || this.batchOrder.has(job.batch_id)) return;
    const created = timeOf(job.created_at);
    this.batchOrder.set(job.batch_id, { created: Number.isFinite(created) ? created : Infinity, seq: job.seq });
    if (!this.currentBatch || this.batchRank(job.batch_id) > this.batchRank(this.currentBatch)) {
      this.currentBatch = job.batch_id;
    }
  }

  /** Larger is newer. Batches without a creation time are newer than those with one (they just arrived). */
  batchRank(batchId) {
    const info = this.batchOrder.get(batchId);
    if (!info) return -Infinity;
    return (Number.isFinite(info.created) ? info.created : 8.64e15) + info.seq / 1e6;
  }

  remove(jobId) {
    this.cards.get(jobId)?.root.remove();
    this.cards.delete(jobId);
    this.jobs.delete(jobId);
  }

  /** Newest batch first; inside a batch, the order the jobs were created. Moves nodes, never rebuilds them. */
  reorder() {
    const sorted = [...this.jobs.values()].sort((a, b) => {
      if (a.batch_id !== b.batch_id) return this.batchRank(b.batch_id) - this.batchRank(a.batch_id);
      const ta = timeOf(a.created_at);
      const tb = timeOf(b.created_at);
      if (Number.isFinite(ta) && Number.isFinite(tb) && ta !== tb) return ta - tb;
      return a.seq - b.seq;
    });
    const list = this.options.list;
    sorted.forEach((job, index) => {
      const node = this.cards.get(job.job_id).root;
      if (list.children[index] !== node) list.insertBefore(node, list.children[index] ?? null);
    });
  }

  createCard(job) {
    const nameId = `job-name-${job.job_id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const refs = {};
    refs.thumb = el('div', { class: 'job-thumb' });
    refs.name = el('h3', { class: 'job-name', id: nameId });
    refs.badge = el('span', { class: 'badge', 'data-testid': 'job-status' });
    refs.fill = el('div', { class: 'progress-fill' });
    refs.progress = el('div', {
      class: 'progress', role: 'progressbar', 'data-testid': 'job-progress',
      'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-labelledby': nameId,
    }, refs.fill);
    refs.stage = el('span', { class: 'job-stage', 'data-testid': 'job-stage' });
    refs.facts = el('span', { class: 'job-facts' });
    refs.error = el('p', { class: 'job-error', 'data-testid': 'job-error', hidden: true });
    refs.actions = el('div', { class: 'job-actions' });
    const root = el('article', { class: 'job', 'data-testid': 'job-card', 'aria-labelledby': nameId },
      refs.thumb,
      el('div', { class: 'job-main' },
        el('div', { class: 'job-title' }, refs.name, refs.badge),
        refs.progress,
        el('div', { class: 'job-meta' }, refs.stage, refs.facts),
        refs.error),
      refs.actions);
    root.dataset.jobId = job.job_id;
    return { root, refs, actionsKey: null, thumbUrl: undefined };
  }

  renderThumb(card, job) {
    const url = this.thumbs.get(job.job_id) ?? null;
    if (card.thumbUrl === url) return;
    card.thumbUrl = url;
    const ext = (job.filename.split('.').pop() || '?').slice(0, 4);
    const fallback = () => el('div', { class: 'thumb-fallback' }, ext);
    const img = url ? el('img', { src: url, alt: '' }) : null;
    if (img) img.addEventListener('error', () => img.replaceWith(fallback()));
    card.refs.thumb.replaceChildren(img ?? fallback());
  }

  renderCard(card, job) {
    const { root, refs } = card;
    root.dataset.status = job.status;
    root.dataset.batchId = job.batch_id;
    root.classList.toggle('previewing', this.previewing === job.job_id);
    refs.name.textContent = job.filename;
    refs.name.title = job.filename;
    refs.badge.textContent = STATUS_LABEL[job.status];
    refs.badge.dataset.status = job.status;
    const pct = Math.round(job.progress ?? 0);
    refs.fill.style.width = `${pct}%`;
    refs.progress.setAttribute('aria-valuenow', String(pct));
    refs.progress.dataset.value = String(pct);

    let stage;
    if (job.status === 'processing') stage = `${stageLabel(job.stage) || 'Working'} · ${pct}%`;
    else if (job.status === 'queued') stage = 'Waiting for a free slot';
    else if (job.status === 'complete') stage = job.depth ? `Done · ${job.depth} depth` : 'Done';
    else if (job.status === 'cancelled') stage = 'Cancelled';
    else stage = 'Failed';
    refs.stage.textContent = stage;

    const facts = [];
    if (job.status === 'complete' && Number.isFinite(job.triangles)) facts.push(`${formatCount(job.triangles)} triangles`);
    if (job.status === 'complete' && Number.isFinite(job.seconds)) facts.push(formatSeconds(job.seconds));
    refs.facts.textContent = facts.join(' · ');

    const showError = job.status === 'error' || Boolean(card.localError);
    refs.error.hidden = !showError;
    refs.error.textContent = card.localError ?? (job.error || 'The job failed without a message.');

    this.renderThumb(card, job);
    this.renderActions(card, job);
  }

  renderActions(card, job) {
    const key = `${job.status}|${job.outputs.map((o) => o.url).join(',')}|${card.cancelling ? 1 : 0}`;
    if (card.actionsKey === key) return;
    card.actionsKey = key;
    const nodes = [];
    if (job.status === 'complete') {
      if (PREVIEWABLE.some((f) => job.outputs.some((o) => o.format === f))) {
        nodes.push(el('button', {
          type: 'button', class: 'btn btn-secondary btn-sm', 'data-testid': 'preview-button',
          'aria-label': `Preview ${job.filename} in 3D`,
          onclick: () => this.options.onPreview(this.jobs.get(job.job_id)),
        }, 'Preview'));
      }
      for (const output of job.outputs) {
        const label = output.format.toUpperCase();
        nodes.push(el('a', {
          class: 'btn btn-secondary btn-sm', 'data-testid': 'download-button', 'data-format': output.format,
          href: output.url, download: '',
          title: Number.isFinite(output.bytes) ? `${label}, ${formatBytes(output.bytes)}` : label,
          'aria-label': `Download ${job.filename} as ${label}`,
        }, el('svg', {}), label));
      }
    }
    if (job.status === 'queued' || job.status === 'processing') {
      nodes.push(el('button', {
        type: 'button', class: 'btn btn-secondary btn-sm btn-danger', 'data-testid': 'cancel-button',
        'aria-label': `Cancel ${job.filename}`, disabled: Boolean(card.cancelling),
        onclick: () => this.cancel(job.job_id),
      }, card.cancelling ? 'Cancelling…' : 'Cancel'));
    }
    // Download links get a real icon (el() cannot create SVG children in the SVG namespace).
    for (const node of nodes) {
      const placeholder = node.querySelector('svg');
      if (placeholder) placeholder.replaceWith(downloadIcon());
    }
    card.refs.actions.replaceChildren(...nodes);
  }

  async cancel(jobId) {
    const card = this.cards.get(jobId);
    if (!card) return;
    card.cancelling = true;
    card.localError = null;
    this.renderCard(card, this.jobs.get(jobId));
    try {
      await this.options.onCancel(jobId);
      this.update({ job_id: jobId, status: 'cancelled', stage: 'cancelled' });
    } catch (error) {
      card.localError = `Could not cancel: ${error.message}`;
    } finally {
      card.cancelling = false;
      if (this.jobs.has(jobId)) this.renderCard(card, this.jobs.get(jobId));
    }
  }

  setPreviewing(jobId) {
    const before = this.previewing;
    this.previewing = jobId;
    for (const id of [before, jobId]) {
      const card = id && this.cards.get(id);
      if (card) card.root.classList.toggle('previewing', id === jobId);
    }
  }

  refreshSummary() {
    const counts = { total: 0, processing: 0, complete: 0, queued: 0, failed: 0, cancelled: 0 };
    for (const job of this.jobs.values()) {
      counts.total += 1;
      if (job.status === 'error') counts.failed += 1;
      else counts[job.status] += 1;
    }
    for (const stat of this.options.stats.querySelectorAll('[data-stat]')) {
      const value = counts[stat.dataset.stat];
      const dd = stat.querySelector('dd');
      if (dd.textContent !== String(value)) dd.textContent = String(value);
    }
    this.options.stats.dataset.total = String(counts.total);

    const link = this.options.downloadAll;
    const batch = this.currentBatch;
    const jobs = batch ? this.jobsOfBatch(batch) : [];
    const done = jobs.filter((j) => j.status === 'complete').length;
    if (batch && done > 0) {
      link.href = batchZipUrl(batch);
      link.setAttribute('download', '');
      link.setAttribute('aria-disabled', 'false');
      link.title = `Every finished file of batch ${batch} as one ZIP`;
    } else {
      link.removeAttribute('href');
      link.removeAttribute('download');
      link.setAttribute('aria-disabled', 'true');
      link.title = 'Available when a job of the latest batch is complete';
    }
    this.options.batchLabel.textContent = batch && jobs.length
      ? `Latest batch: ${done} of ${jobs.length} complete` : '';
  }

  /** The first finished job that can be previewed, newest batch first, for the automatic preview. */
  firstPreviewable() {
    const list = [...this.options.list.children].map((node) => this.jobs.get(node.dataset.jobId));
    return list.find((job) => job?.status === 'complete' && PREVIEWABLE.some((f) => job.outputs.some((o) => o.format === f))) ?? null;
  }
}

function downloadIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M12 4v12m0 0l-4-4m4 4l4-4M4 20h16');
  svg.append(path);
  return svg;
}

export { PREVIEWABLE };
