'use strict'
// `method` (and its 2.5D alias `depth`): what each method reports and what it refuses.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { BatchProcessor, imageToMesh } = require('orfeas')
const { example, tempDir, rejectsWithCode } = require('./helpers.cjs')

test('method and depth name the same choice; results say which method ran', async () => {
  const proc = new BatchProcessor({ slots: 1, method: 'inflate' })
  assert.equal(proc.method, 'inflate')
  assert.equal(new BatchProcessor({ slots: 1, depth: 'relief', method: 'relief' }).method, 'relief')
  const [r] = await proc.run([example('logo_star.png')], { outDir: tempDir(), quality: 'low' })
  assert.equal(r.status, 'complete', r.error)
  assert.equal(r.method, 'inflate')
  assert.equal(r.depth, 'inflate')
  assert.equal(r.resolution, null)
  assert.deepEqual(r.warnings, [])
})

test('a conflicting pair, an unknown method and missing TripoSR weights are refused clearly', () => {
  for (const options of [{ method: 'triposr', depth: 'relief' }, { method: 'nerf' }, { depth: 'triposr' }]) {
    assert.throws(() => new BatchProcessor(options), (e) => e.code === 'ERR_INVALID_INPUT', JSON.stringify(options))
  }
  assert.throws(
    () => new BatchProcessor({ method: 'triposr', weights: path.join(tempDir(), 'none') }),
    (e) => e.code === 'ERR_WEIGHTS_NOT_FOUND' && /fetch-model --model triposr/.test(e.message),
  )
})

test('formats the method cannot make are refused before any job runs', async () => {
  const out = path.join(tempDir(), 'out')
  const proc = new BatchProcessor({ slots: 1 })
  await rejectsWithCode(assert, proc.run([example('heart.bmp')], { outDir: out, formats: ['stl', 'field.npy'] }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, proc.run([example('heart.bmp')], { outDir: out, resolution: 2 }), 'ERR_INVALID_INPUT')
  assert.equal(fs.existsSync(out), false)
})

test('a relief mesh reports its method and has no density field', async () => {
  const mesh = await imageToMesh(example('logo_star.png'), { quality: 'low', method: 'relief' })
  assert.equal(mesh.method, 'relief')
  assert.equal(mesh.mask, 'alpha')
  assert.equal(mesh.resolution, null)
  assert.deepEqual(mesh.warnings, [])
  assert.equal(mesh.colors.length, mesh.vertexCount * 3)
  assert.throws(() => mesh.toBuffer('field.npy'), (e) => e.code === 'ERR_EXPORT' && /density field/.test(e.message))
})
