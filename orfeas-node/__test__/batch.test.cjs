'use strict'
// BatchProcessor.run: results, progress events, cancellation, per-job errors, the event loop.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { BatchProcessor } = require('orfeas')
const { example, tempDir, rejectsWithCode } = require('./helpers.cjs')

const STAGES = ['queued', 'loading', 'masking', 'depth_estimation', 'meshing', 'exporting']

test('a batch writes every format and reports progress as the documented events', async () => {
  const out = tempDir()
  const proc = new BatchProcessor({ slots: 2, depth: 'auto' })
  assert.equal(proc.slots, 2)
  assert.equal(proc.device, 'cpu')
  const events = []
  const inputs = [example('logo_star.png'), fs.readFileSync(example('heart.bmp'))]
  const results = await proc.run(inputs, {
    outDir: out,
    formats: ['stl', 'glb', 'stl'],
    quality: 'low',
    onProgress: (ev) => events.push(ev),
  })
  assert.equal(results.length, 2)
  for (const r of results) {
    assert.equal(r.status, 'complete', r.error)
    assert.equal(r.error, null)
    assert.equal(r.code, null)
    assert.equal(r.watertight, true)
    assert.ok(r.triangles > 0)
    assert.ok(r.seconds >= 0)
    assert.ok(['relief', 'inflate', 'depth-anything'].includes(r.depth), r.depth)
    assert.equal(r.outputs.length, 2, 'duplicate formats are written once')
    for (const file of r.outputs) assert.ok(fs.statSync(file).size > 0, file)
    assert.deepEqual(r.files.map((f) => f.format), ['stl', 'glb'])
    for (const f of r.files) assert.equal(f.bytes, fs.statSync(f.path).size)
  }
  assert.equal(results[0].input, example('logo_star.png'))
  assert.equal(path.basename(results[0].outputs[0]), 'logo_star.stl')
  assert.equal(results[1].input, 'buffer-2')
  assert.equal(path.basename(results[1].outputs[0]), 'buffer-2.stl')

  // Every event is {event, data} with the core's serde shape; all arrived before the promise settled.
  for (const ev of events) {
    assert.deepEqual(Object.keys(ev).sort(), ['data', 'event'])
    assert.equal(typeof ev.data.batch_id, 'string')
  }
  const byJob = new Map()
  for (const ev of events.filter((e) => e.event === 'generation_progress')) {
    assert.ok(ev.data.progress >= 0 && ev.data.progress <= 100)
    if (!byJob.has(ev.data.job_id)) byJob.set(ev.data.job_id, [])
    const stages = byJob.get(ev.data.job_id)
    if (stages[stages.length - 1] !== ev.data.stage) stages.push(ev.data.stage)
  }
  assert.deepEqual([...byJob.keys()].sort(), results.map((r) => r.jobId).sort())
  for (const stages of byJob.values()) assert.deepEqual(stages, STAGES, 'stages arrive in pipeline order')
  const complete = events.filter((e) => e.event === 'generation_complete')
  assert.equal(complete.length, 2)
  for (const ev of complete) {
    assert.equal(ev.data.success, true)
    assert.equal(ev.data.outputs.length, 2)
    assert.ok(ev.data.triangles > 0)
  }
  const counts = events.filter((e) => e.event === 'batch_progress').map((e) => e.data)
  assert.ok(counts.length >= 3, 'batch counts at the start and at every job change')
  assert.ok(counts.every((c) => c.total === 2))
  assert.ok(
    counts.some((c) => c.complete === 2 && c.queued === 0 && c.processing === 0 && c.failed === 0),
    JSON.stringify(counts),
  )
})

test('one bad input fails alone, with its code, and the others complete', async () => {
  const dir = tempDir()
  const bad = path.join(dir, 'broken.png')
  fs.writeFileSync(bad, 'not a png')
  const proc = new BatchProcessor({ slots: 2 })
  const events = []
  const results = await proc.run([example('cat_silhouette.png'), bad, path.join(dir, 'missing.jpg')], {
    outDir: path.join(dir, 'out'),
    quality: 'low',
    onProgress: (ev) => events.push(ev),
  })
  assert.deepEqual(results.map((r) => r.status), ['complete', 'error', 'error'])
  assert.equal(results[1].code, 'ERR_UNSUPPORTED_FORMAT')
  assert.match(results[1].error, /broken\.png/)
  assert.equal(results[2].code, 'ERR_IO')
  assert.deepEqual(results[1].outputs, [])
  const errors = events.filter((e) => e.event === 'generation_error')
  assert.deepEqual(errors.map((e) => e.data.code).sort(), ['ERR_IO', 'ERR_UNSUPPORTED_FORMAT'])
  for (const e of errors) assert.equal(e.data.success, false)
})

test('a durable processor completes with its files on disk', async () => {
  const dir = tempDir()
  const proc = new BatchProcessor({ slots: 1, durable: true })
  const [result] = await proc.run([example('heart.bmp')], { outDir: path.join(dir, 'out'), quality: 'low' })
  assert.equal(result.status, 'complete')
  assert.ok(result.outputs.length > 0)
  for (const file of result.outputs) assert.ok(fs.statSync(file).size > 0, file)
})

test('aborting mid-batch cancels the rest and leaves no partial files', async () => {
  const out = tempDir()
  const proc = new BatchProcessor({ slots: 1 })
  const controller = new AbortController()
  const inputs = Array.from({ length: 8 }, () => example('product_bottle.jpg'))
  const events = []
  const results = await proc.run(inputs, {
    outDir: out,
    quality: 'medium',
    formats: ['stl'],
    signal: controller.signal,
    onProgress: (ev) => {
      events.push(ev)
      if (ev.event === 'generation_complete') controller.abort()
    },
  })
  const statuses = results.map((r) => r.status)
  const complete = statuses.filter((s) => s === 'complete').length
  const cancelled = results.filter((r) => r.status === 'cancelled')
  assert.ok(complete >= 1, `statuses: ${statuses}`)
  assert.ok(cancelled.length >= 5, `at most the running job can finish after the abort: ${statuses}`)
  for (const r of cancelled) {
    assert.equal(r.code, 'ERR_CANCELLED')
    assert.deepEqual(r.outputs, [])
  }
  assert.equal(events.filter((e) => e.event === 'generation_cancelled').length, cancelled.length)
  const written = fs.readdirSync(out).sort()
  assert.equal(written.length, complete, `only finished jobs left files: ${written}`)
})

test('an already aborted signal rejects at once with ERR_CANCELLED', async () => {
  const out = tempDir()
  const proc = new BatchProcessor({ slots: 1 })
  const events = []
  await rejectsWithCode(
    assert,
    proc.run([example('logo_star.png')], { outDir: out, signal: AbortSignal.abort(), onProgress: (e) => events.push(e) }),
    'ERR_CANCELLED',
  )
  assert.deepEqual(events, [])
  assert.deepEqual(fs.readdirSync(out), [])
})

test('the event loop keeps running while a batch runs', async () => {
  const proc = new BatchProcessor({ slots: 2 })
  let ticks = 0
  let ticksBetweenEvents = 0
  let firstEventSeen = false
  const timer = setInterval(() => {
    ticks += 1
    if (firstEventSeen) ticksBetweenEvents += 1
  }, 5)
  try {
    const inputs = Array.from({ length: 4 }, () => example('product_bottle.jpg'))
    const running = proc.run(inputs, {
      outDir: tempDir(),
      quality: 'medium',
      onProgress: () => {
        firstEventSeen = true
      },
    })
    const results = await running
    assert.ok(results.every((r) => r.status === 'complete'))
  } finally {
    clearInterval(timer)
  }
  // A blocking run would return only after the work, with no timer callback in between.
  assert.ok(ticks >= 3, `the timer fired ${ticks} times during the batch`)
  assert.ok(ticksBetweenEvents >= 1, 'the timer fired while progress events were arriving')
})

test('a throwing onProgress is reported as a warning and the batch completes', async () => {
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    const proc = new BatchProcessor({ slots: 1 })
    const results = await proc.run([example('cat_silhouette.png')], {
      outDir: tempDir(),
      quality: 'low',
      onProgress: () => {
        throw new Error('callback bug')
      },
    })
    assert.equal(results[0].status, 'complete')
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  const ours = warnings.filter((w) => w.name === 'OrfeasProgressWarning')
  assert.ok(ours.length >= 1)
  assert.match(ours[0].message, /callback bug/)
})

test('bad options are refused with codes', async () => {
  assert.throws(() => new BatchProcessor({ slots: 0 }), (e) => e.code === 'ERR_INVALID_INPUT')
  assert.throws(() => new BatchProcessor(4), (e) => e.code === 'ERR_INVALID_INPUT')
  assert.throws(() => new BatchProcessor({ slots: 'four' }), (e) => e.code === 'ERR_INVALID_INPUT')
  assert.throws(() => new BatchProcessor({ device: 'tpu' }), (e) => e.code === 'ERR_INVALID_INPUT' || e.code === 'ERR_DEVICE')
  assert.throws(() => new BatchProcessor({ depth: 'depth-anything', weights: '/nonexistent' }), (e) => e.code === 'ERR_WEIGHTS_NOT_FOUND')
  const proc = new BatchProcessor()
  // The default follows the device: one slot per core on the CPU (at most 16).
  assert.ok(proc.slots >= 1 && proc.slots <= 16, `${proc.slots} slots`)
  const star = example('logo_star.png')
  await rejectsWithCode(assert, proc.run([star]), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([star], 'out'), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([star], {}), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run('not-an-array', { outDir: tempDir() }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([star, 7], { outDir: tempDir() }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([star], { outDir: tempDir(), formats: ['dwg'] }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([star], { outDir: tempDir(), formats: [] }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([star], { outDir: tempDir(), quality: 'ultra' }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([star], { outDir: tempDir(), signal: {} }), 'ERR_INVALID_INPUT')
  assert.deepEqual(await proc.run([], { outDir: tempDir() }), [])
})

test('gpuStats of a processor adds its slots and queue', () => {
  const proc = new BatchProcessor({ slots: 3 })
  const stats = proc.gpuStats()
  assert.equal(typeof stats.available, 'boolean')
  assert.ok(Array.isArray(stats.gpus))
  assert.deepEqual(stats.slots, { total: 3, busy: 0 })
  assert.equal(stats.queue, 0)
})
