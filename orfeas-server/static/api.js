// The HTTP side of docs/reference.md §3: thin wrappers that turn non-2xx answers into Errors
// carrying the server's `{"success":false,"error":...}` message.

/** An HTTP answer that was not a success; `status` is the HTTP status, `body` the parsed JSON if any. */
export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

function messageFor(status, body, fallback) {
  if (body && typeof body.error === 'string' && body.error) return body.error;
  if (status === 413) return 'The upload is larger than the server accepts.';
  if (status === 415) return 'The server refused a file that is not an image.';
  if (status === 503) return 'The server is not ready yet; try again in a moment.';
  return fallback || `The server answered ${status}.`;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new ApiError(messageFor(response.status, body), response.status, body);
  return body;
}

export const getHealth = () => getJson('/api/health');
export const getGpuStats = () => getJson('/api/gpu-stats');

/** The newest 1000 jobs (the server pages its list). Accepts a bare list or `{jobs:[...]}`. */
export async function listJobs() {
  const body = await getJson('/api/jobs?limit=1000');
  return Array.isArray(body) ? body : (body?.jobs ?? []);
}

/** GET /api/batches/{id}: counts and the batch's job objects. */
export const getBatch = (batchId) => getJson(`/api/batches/${encodeURIComponent(batchId)}`);

/** DELETE /api/jobs/{id}: cancels a queued or running job. */
export async function cancelJob(jobId) {
  const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}`, { method: 'DELETE' });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new ApiError(messageFor(response.status, body), response.status, body);
  return body;
}

/** DELETE /api/batches/{id}: cancels every unfinished job of a batch. */
export async function cancelBatch(batchId) {
  const response = await fetch(`/api/batches/${encodeURIComponent(batchId)}`, { method: 'DELETE' });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new ApiError(messageFor(response.status, body), response.status, body);
  return body;
}

export const batchZipUrl = (batchId) => `/api/batches/${encodeURIComponent(batchId)}/zip`;

/**
 * POST /api/batch-generate with the files as repeated `files` parts. Uses XMLHttpRequest because
 * fetch cannot report upload progress; `onUploadProgress(fraction)` gets 0..1.
 * Resolves with the 202 body; rejects with an ApiError (400: nothing valid, 413: too large, ...).
 */
export function submitBatch(files, options, onUploadProgress = () => {}) {
  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && value !== null && value !== '') form.append(key, String(value));
  }
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/batch-generate');
    xhr.responseType = 'json';
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onUploadProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new ApiError(messageFor(xhr.status, body), xhr.status, body));
    });
    xhr.addEventListener('error', () => reject(new ApiError('The upload failed: the server could not be reached.', 0, null)));
    xhr.addEventListener('abort', () => reject(new ApiError('The upload was cancelled.', 0, null)));
    xhr.send(form);
  });
}
