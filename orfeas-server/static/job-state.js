// Job state without the DOM: turning server payloads (job objects, event data) into one job
// shape, and merging updates so that events arriving late or out of order never move a job
// backwards. Pure functions, so they are unit-tested under Node (tests/browser/job-state.test.mjs).

export const TERMINAL = new Set(['complete', 'error', 'cancelled']);

/** Fields a job gets when it finishes; a non-final payload never overrides them. */
const FINISH_FIELDS = new Set(['outputs', 'error', 'code', 'triangles', 'seconds', 'depth', 'method', 'mask', 'warnings', 'finished_at']);

/** Maps the spellings a server might use onto the five card states of docs/reference.md §3. */
export function normaliseStatus(status, stage) {
  const s = String(status ?? stage ?? '').toLowerCase();
  if (s === 'failed' || s === 'error') return 'error';
  if (s === 'canceled' || s === 'cancelled') return 'cancelled';
  if (s === 'complete' || s === 'completed' || s === 'done') return 'complete';
  if (s === 'queued' || s === 'pending' || s === '') return 'queued';
  return 'processing';
}

/** The last path component of a name that may carry directories (either separator). */
export function baseName(name) {
  return String(name ?? '').split(/[\\/]/).pop() || String(name ?? '');
}

/** The download URL of one output; built from its file name when the server gave none. */
function outputUrl(jobId, output) {
  if (output.url) return String(output.url);
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

/**
 * A job object (GET /api/jobs/{id}) or an event's `data` as a partial job: only the fields the
 * payload carries are set. Returns null without a job id.
 */
export function toJob(raw) {
  const id = raw?.job_id ?? raw?.id;
  if (id === undefined || id === null) return null;
  const jobId = String(id);
  const job = { job_id: jobId };
  if (raw.batch_id !== undefined && raw.batch_id !== null) job.batch_id = String(raw.batch_id);
  const name = raw.filename ?? raw.input;
  if (name) job.filename = baseName(name);
  if (raw.status !== undefined || raw.stage !== undefined) job.status = normaliseStatus(raw.status, raw.stage);
  if (raw.stage !== undefined && raw.stage !== null) job.stage = String(raw.stage);
  if (raw.progress !== undefined && raw.progress !== null) job.progress = Math.max(0, Math.min(100, Number(raw.progress) || 0));
  if (raw.outputs !== undefined && raw.outputs !== null) job.outputs = normaliseOutputs(jobId, raw.outputs);
  if (raw.error !== undefined) job.error = raw.error ? String(raw.error) : null;
  if (raw.code !== undefined) job.code = raw.code ? String(raw.code) : null;
  if (raw.triangles !== undefined && raw.triangles !== null) job.triangles = Number(raw.triangles);
  if (raw.seconds !== undefined && raw.seconds !== null) job.seconds = Number(raw.seconds);
  if (raw.depth !== undefined) job.depth = raw.depth;
  if (raw.method !== undefined) job.method = raw.method;
  if (raw.mask !== undefined) job.mask = raw.mask;
  if (Array.isArray(raw.warnings)) job.warnings = raw.warnings.map(String);
  if (raw.created_at !== undefined) job.created_at = raw.created_at;
  if (raw.finished_at !== undefined) job.finished_at = raw.finished_at;
  return job;
}

/**
 * The job after `incoming` (from toJob) is applied to `current` (undefined for a new job).
 * `authoritative` (a snapshot or a full listing) replaces what it carries. Otherwise a job that
 * finished keeps its terminal state, a running job does not go back to queued, and progress only
 * grows while the job runs.
 */
export function mergeJob(current, incoming, authoritative) {
  let next;
  if (!current) {
    next = { status: 'queued', progress: 0, stage: 'queued', outputs: [], error: null, ...incoming };
  } else if (authoritative) {
    next = { ...current, ...incoming };
  } else {
    next = { ...current };
    const wasTerminal = TERMINAL.has(current.status);
    const isTerminal = TERMINAL.has(incoming.status);
    // A payload from before the job finished (e.g. a GET answered while it ran, arriving after
    // the completion event) must not wipe what the finish brought: outputs, error, counts.
    const stale = wasTerminal && !isTerminal;
    for (const [key, value] of Object.entries(incoming)) {
      if (key === 'status' || key === 'stage' || key === 'progress') continue;
      if (stale && FINISH_FIELDS.has(key)) continue;
      next[key] = value;
    }
    const backToQueue = current.status === 'processing' && incoming.status === 'queued';
    if (isTerminal || (!wasTerminal && incoming.status !== undefined && !backToQueue)) {
      next.status = incoming.status;
      if (incoming.stage !== undefined) next.stage = incoming.stage;
    }
    if (incoming.progress !== undefined && !wasTerminal) {
      next.progress = isTerminal ? incoming.progress : Math.max(current.progress ?? 0, incoming.progress);
    }
  }
  if (next.status === 'complete') next.progress = 100;
  if (!next.batch_id) next.batch_id = current?.batch_id ?? '';
  if (!next.filename) next.filename = current?.filename ?? next.job_id;
  if (!Array.isArray(next.outputs)) next.outputs = [];
  return next;
}

/** Counts for the stats bar; `failed` counts jobs in the `error` state. */
export function countJobs(jobs) {
  const counts = { total: 0, processing: 0, complete: 0, queued: 0, failed: 0, cancelled: 0 };
  for (const job of jobs) {
    counts.total += 1;
    if (job.status === 'error') counts.failed += 1;
    else counts[job.status] += 1;
  }
  return counts;
}
