// Unit tests of the page's job-state rules (orfeas-server/static/job-state.js) under Node.
// The file is served to browsers as-is and has no package.json of its own, so it is imported
// through a data: URL, which Node always treats as an ES module.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const source = readFileSync(new URL('../../static/job-state.js', import.meta.url), 'utf8');
const { countJobs, mergeJob, normaliseStatus, toJob } = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);

const apply = (current, raw, authoritative = false) => mergeJob(current, toJob(raw), authoritative);

describe('job state', () => {
  it('maps server spellings onto the five card states', () => {
    assert.equal(normaliseStatus('failed'), 'error');
    assert.equal(normaliseStatus('canceled'), 'cancelled');
    assert.equal(normaliseStatus(undefined, 'depth_estimation'), 'processing');
    assert.equal(normaliseStatus(undefined, 'queued'), 'queued');
    assert.equal(normaliseStatus('complete'), 'complete');
  });

  it('reads a job object and an event payload into one shape', () => {
    const job = toJob({ job_id: 7, batch_id: 'b', filename: 'dir/cat.png', status: 'processing', stage: 'meshing', progress: 55.5,
      outputs: [{ format: 'STL', url: '/api/download/7/cat.stl', bytes: 684 }, { format: 'glb', path: '/data/7/cat.glb', bytes: 9 }] });
    assert.equal(job.job_id, '7');
    assert.equal(job.filename, 'cat.png');
    assert.equal(job.status, 'processing');
    assert.deepEqual(job.outputs.map((o) => [o.format, o.url]), [['stl', '/api/download/7/cat.stl'], ['glb', '/api/download/7/cat.glb']]);
    const event = toJob({ job_id: 'x', input: '/tmp/in/star.png', progress: 150, stage: 'exporting' });
    assert.equal(event.filename, 'star.png');
    assert.equal(event.progress, 100, 'progress is clamped to 0..100');
    assert.equal(toJob({ progress: 3 }), null, 'no id, no job');
  });

  it('never undoes a finished job with a late progress event', () => {
    let job = apply(undefined, { job_id: 'a', batch_id: 'b', stage: 'loading', progress: 2 });
    job = apply(job, { job_id: 'a', status: 'complete', stage: 'complete', progress: 100, outputs: [{ format: 'stl', url: '/u' }] });
    job = apply(job, { job_id: 'a', stage: 'meshing', progress: 55 });
    assert.equal(job.status, 'complete');
    assert.equal(job.progress, 100);
    assert.equal(job.outputs.length, 1);
  });

  it('keeps a finished job\'s outputs when a job object fetched while it ran arrives late', () => {
    let job = apply(undefined, { job_id: 'a', batch_id: 'b', status: 'queued', outputs: [] });
    job = apply(job, { job_id: 'a', status: 'complete', stage: 'complete', progress: 100, triangles: 9, outputs: [{ format: 'stl', url: '/u' }] });
    // GET /api/batches/{id} answered before the job finished, delivered after the completion event.
    job = apply(job, { job_id: 'a', batch_id: 'b', filename: 'cat.png', status: 'processing', stage: 'meshing', progress: 55, outputs: [], error: null, triangles: 0 });
    assert.equal(job.status, 'complete');
    assert.equal(job.outputs.length, 1, 'outputs survive');
    assert.equal(job.triangles, 9);
    assert.equal(job.filename, 'cat.png', 'harmless fields still update');
  });

  it('keeps progress growing and a running job out of the queue', () => {
    let job = apply(undefined, { job_id: 'a', stage: 'meshing', progress: 55 });
    job = apply(job, { job_id: 'a', stage: 'masking', progress: 15 });
    assert.equal(job.progress, 55);
    job = apply(job, { job_id: 'a', status: 'queued', stage: 'queued', progress: 0 });
    assert.equal(job.status, 'processing');
    job = apply(job, { job_id: 'a', status: 'error', stage: 'error', error: 'not an image' });
    assert.equal(job.status, 'error');
    assert.equal(job.error, 'not an image');
  });

  it('lets a snapshot (authoritative) move a job back, e.g. re-queued after a server restart', () => {
    let job = apply(undefined, { job_id: 'a', stage: 'meshing', progress: 55 });
    job = apply(job, { job_id: 'a', status: 'queued', stage: 'queued', progress: 0 }, true);
    assert.equal(job.status, 'queued');
    assert.equal(job.progress, 0);
  });

  it('counts jobs for the stats bar', () => {
    const counts = countJobs(['queued', 'processing', 'complete', 'complete', 'error', 'cancelled'].map((status) => ({ status })));
    assert.deepEqual(counts, { total: 6, processing: 1, complete: 2, queued: 1, failed: 1, cancelled: 1 });
  });
});
