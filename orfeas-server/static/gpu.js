// The GPU monitor: memory, utilisation and temperature per GPU from `/api/gpu-stats` or the
// `gpu_stats` event, slots busy of total, and "CPU mode" when the server has no GPU. A
// cluster's front end (`orfeas serve --queue`) lists its live workers instead, each with its
// slots and GPUs, and says when the queue is unreachable.

import { el } from './util.js';

function meter(label, fraction, text) {
  const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  return el('div', { class: 'meter' },
    el('span', { class: 'meter-label' }, label),
    el('div', {
      class: 'meter-track', role: 'meter', 'aria-label': label,
      'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct,
    }, el('div', { class: `meter-fill${pct >= 90 ? ' hot' : ''}`, style: `width:${pct}%` })),
    el('span', {}, text));
}

function memoryText(used, total) {
  const gb = (mb) => (mb / 1024).toFixed(1);
  return `${gb(used)} / ${gb(total)} GB`;
}

function gpuCard(gpu) {
  const used = Number(gpu.memory_used_mb) || 0;
  const total = Number(gpu.memory_total_mb) || 0;
  const util = Number(gpu.utilization_percent) || 0;
  const temp = gpu.temperature_c;
  return el('div', { class: 'gpu-card', 'data-gpu-index': gpu.index ?? '' },
    el('div', { class: 'gpu-name' },
      el('span', {}, `${gpu.index ?? ''}${gpu.index !== undefined ? ' · ' : ''}${gpu.name ?? 'GPU'}`),
      temp !== undefined && temp !== null ? el('span', { class: 'muted' }, `${temp} °C`) : null),
    meter('Memory', total > 0 ? used / total : 0, total > 0 ? memoryText(used, total) : '–'),
    meter('Utilisation', util / 100, `${Math.round(util)} %`));
}

export class GpuMonitor {
  constructor(root) {
    this.root = root;
    this.mode = root.querySelector('#gpu-mode');
    this.body = root.querySelector('#gpu-body');
    this.dots = root.querySelector('#slot-dots');
    this.slotText = root.querySelector('#slot-text');
    this.queueText = root.querySelector('#queue-text');
  }

  /** Renders one `/api/gpu-stats` object. */
  render(stats) {
    if (!stats || typeof stats !== 'object') return;
    const gpus = Array.isArray(stats.gpus) ? stats.gpus : [];
    const available = Boolean(stats.available) && gpus.length > 0;
    this.root.dataset.mode = available ? 'gpu' : 'cpu';
    this.mode.textContent = available ? `${gpus.length} GPU${gpus.length > 1 ? 's' : ''}` : 'CPU mode';

    if (Array.isArray(stats.workers)) {
      this.renderWorkers(stats.workers, stats.queue_state);
    } else if (available) {
      this.body.replaceChildren(...gpus.map(gpuCard));
    } else {
      this.body.replaceChildren(el('p', { class: 'muted', title: stats.reason ?? '' },
        'CPU mode: no NVIDIA GPU or driver on the server, so every job runs on the CPU.'));
    }

    const total = Number(stats.slots?.total);
    const busy = Number(stats.slots?.busy);
    if (Number.isFinite(total) && total > 0) {
      const shown = Math.min(total, 32);
      this.dots.replaceChildren(...Array.from({ length: shown }, (_, i) => el('span', { class: `slot-dot${i < busy ? ' busy' : ''}` })));
      this.slotText.textContent = `${Number.isFinite(busy) ? busy : 0} busy of ${total}`;
    }
    const queue = Number(stats.queue);
    this.queueText.textContent = Number.isFinite(queue) ? `${queue} queued` : '';
  }

  /** A front end's workers: one card each, with its GPUs (or "CPU"). */
  renderWorkers(workers, queueState) {
    const count = workers.length;
    this.root.dataset.mode = 'cluster';
    this.mode.textContent = `${count} worker${count === 1 ? '' : 's'}`;
    const cards = workers.map((w) => {
      const gpus = Array.isArray(w.gpus) ? w.gpus : [];
      return el('div', { class: 'worker-card', 'data-worker-id': w.id ?? '' },
        el('div', { class: 'gpu-name' },
          el('span', {}, `${w.id ?? 'worker'}${w.host ? ` · ${w.host}` : ''}`),
          el('span', { class: 'muted' }, `${Number(w.slots?.busy) || 0} busy of ${Number(w.slots?.total) || 0}`)),
        ...(gpus.length > 0 ? gpus.map(gpuCard) : [el('p', { class: 'muted' }, 'CPU')]));
    });
    const notes = [];
    if (queueState === 'disconnected') {
      notes.push(el('p', { class: 'queue-warning', role: 'status' },
        'The queue cannot be reached: new uploads wait here and are sent when it is back.'));
    }
    if (count === 0) {
      notes.push(el('p', { class: 'muted' }, 'No worker is connected: jobs wait in the queue until one joins.'));
    }
    this.body.replaceChildren(...notes, ...cards);
  }

  /** Shown when the stats could not be read at all. */
  unavailable(message) {
    this.root.dataset.mode = 'unknown';
    this.mode.textContent = 'Unknown';
    this.body.replaceChildren(el('p', { class: 'muted' }, message));
  }
}
