// The job board: one card per job, keyed by job id (never by position), updated in place from
// WebSocket events, HTTP answers and `snapshot`s; plus the stats bar and "download all".

import { batchZipUrl, cancelBatch } from './api.js';
import { countJobs, mergeJob, TERMINAL, toJob } from './job-state.js';
import { announce, el, formatBytes, formatCount, formatSeconds, stageLabel } from './util.js';

const STATUS_LABEL = {
  queued: 'Queued', processing: 'Processing', complete: 'Complete', error: 'Failed', cancelled: 'Cancelled',
};
/** Formats the viewer can show, best first. */
const PREVIEWABLE = ['glb', 'stl'];

/** What a finished card says it made: a full object, or a relief and the estimator that ran. */
function doneLabel(job) {
  if (job.method === 'triposr') return 'Done · full 3D object';
  return job.depth ? `Done · ${job.depth} relief` : 'Done';
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
    this.groups = new Map();
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
    return toJob(raw);
  }

  store(incoming, authoritative) {
    const id = incoming.job_id;
    const current = this.jobs.get(id);
    const next = mergeJob(current, incoming, authoritative);
    if (!current) next.seq = this.seq++;
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
    const order = [];
    const members = new Map();
    for (const job of sorted) {
      if (!members.has(job.batch_id)) {
        members.set(job.batch_id, []);
        order.push(job.batch_id);
      }
      members.get(job.batch_id).push(this.cards.get(job.job_id).root);
    }
    order.forEach((batchId, index) => {
      const group = this.group(batchId);
      if (list.children[index] !== group.root) list.insertBefore(group.root, list.children[index] ?? null);
      members.get(batchId).forEach((node, i) => {
        if (group.body.children[i] !== node) group.body.insertBefore(node, group.body.children[i] ?? null);
      });
    });
    for (const [batchId, group] of this.groups) {
      if (!members.has(batchId)) {
        group.root.remove();
        this.groups.delete(batchId);
      }
    }
  }

  /** The section holding one batch's cards, created on first use. */
  group(batchId) {
    let group = this.groups.get(batchId);
    if (group) return group;
    const headingId = `batch-${String(batchId).replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const title = el('h3', { class: 'batch-title', id: headingId });
    const counts = el('span', { class: 'batch-counts' });
    const zip = el('a', { class: 'btn-link', 'data-testid': 'batch-zip', 'aria-disabled': 'true' }, 'ZIP');
    const stop = el('button', {
      type: 'button', class: 'btn-link btn-link-danger', 'data-testid': 'cancel-batch', hidden: true,
      'aria-label': 'Cancel every unfinished job of this batch',
      onclick: async () => {
        stop.disabled = true;
        try {
          await cancelBatch(batchId);
        } catch (error) {
          announce(`Could not cancel the batch: ${error.message}`);
        } finally {
          stop.disabled = false;
        }
      },
    }, 'Cancel rest');
    const body = el('div', { class: 'batch-jobs' });
    const root = el('section', { class: 'batch', 'data-batch-id': batchId, 'aria-labelledby': headingId },
      el('header', { class: 'batch-head' }, title, counts, stop, zip), body);
    group = { root, title, counts, zip, stop, body, key: '' };
    this.groups.set(batchId, group);
    return group;
  }

  renderGroups() {
    for (const [batchId, group] of this.groups) {
      const jobs = this.jobsOfBatch(batchId);
      const c = countJobs(jobs);
      const started = jobs.map((j) => timeOf(j.created_at)).filter(Number.isFinite).sort((x, y) => x - y)[0];
      const title = Number.isFinite(started)
        ? `Batch of ${new Date(started).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })}`
        : `Batch ${batchId}`;
      const parts = [`${c.total} job${c.total === 1 ? '' : 's'}`];
      if (c.complete) parts.push(`${c.complete} complete`);
      if (c.processing + c.queued) parts.push(`${c.processing + c.queued} to go`);
      if (c.failed) parts.push(`${c.failed} failed`);
      if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
      const key = `${title}|${parts.join()}`;
      if (group.key === key) continue;
      group.key = key;
      group.title.textContent = title;
      group.title.title = `batch id ${batchId}`;
      group.counts.textContent = parts.join(' · ');
      group.stop.hidden = c.processing + c.queued === 0;
      if (c.complete > 0) {
        group.zip.href = batchZipUrl(batchId);
        group.zip.setAttribute('download', '');
        group.zip.setAttribute('aria-disabled', 'false');
        group.zip.setAttribute('aria-label', `Download the finished files of this batch as a ZIP`);
      } else {
        group.zip.removeAttribute('href');
        group.zip.removeAttribute('download');
        group.zip.setAttribute('aria-disabled', 'true');
      }
    }
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
    refs.warning = el('p', { class: 'job-warning', 'data-testid': 'job-warning', hidden: true });
    refs.actions = el('div', { class: 'job-actions' });
    const root = el('article', { class: 'job', 'data-testid': 'job-card', 'aria-labelledby': nameId },
      refs.thumb,
      el('div', { class: 'job-main' },
        el('div', { class: 'job-title' }, refs.name, refs.badge),
        refs.progress,
        el('div', { class: 'job-meta' }, refs.stage, refs.facts),
        refs.error, refs.warning),
      refs.actions);
    root.dataset.jobId = job.job_id;
    return { root, refs, actionsKey: null, thumbKey: undefined };
  }

  /**
   * The uploaded image; once the job has its `mask.png`, the cut-out: the same image with the
   * mask as its alpha (CSS luminance mask) over a checkerboard, so what was removed shows.
   */
  renderThumb(card, job) {
    const url = this.thumbs.get(job.job_id) ?? null;
    const mask = job.status === 'complete' ? job.outputs?.find((o) => o.format === 'mask.png')?.url ?? null : null;
    const key = `${url}|${mask}`;
    if (card.thumbKey === key) return;
    card.thumbKey = key;
    const ext = (job.filename.split('.').pop() || '?').slice(0, 4);
    const fallback = () => el('div', { class: 'thumb-fallback' }, ext);
    const img = url ? el('img', { src: url, alt: '' }) : null;
    if (img) img.addEventListener('error', () => img.replaceWith(fallback()));
    if (img && mask) {
      img.classList.add('cutout');
      img.dataset.testid = 'job-cutout';
      img.alt = `${job.filename} with its background removed (mask: ${job.mask ?? 'unknown'})`;
      img.style.maskImage = img.style.webkitMaskImage = `url("${mask}")`;
    }
    card.refs.thumb.classList.toggle('checker', Boolean(img && mask));
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
    else if (job.status === 'complete') stage = doneLabel(job);
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
    if (job.code && !card.localError) refs.error.title = `error code ${job.code}`;
    const warnings = job.status === 'complete' && Array.isArray(job.warnings) ? job.warnings : [];
    refs.warning.hidden = warnings.length === 0;
    refs.warning.textContent = warnings.join(' ');

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
      // 409: it finished first; its own event brings the final state, which is no error.
      if (error.status === 409) announce(`${this.jobs.get(jobId)?.filename ?? 'The job'} had already finished`);
      else card.localError = `Could not cancel: ${error.message}`;
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
    const counts = countJobs(this.jobs.values());
    this.renderGroups();
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
    const list = [...this.options.list.querySelectorAll('[data-testid="job-card"]')].map((node) => this.jobs.get(node.dataset.jobId));
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
