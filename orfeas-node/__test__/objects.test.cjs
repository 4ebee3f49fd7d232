'use strict'
// method: 'triposr': full 3D objects with the tiny random TripoSR of the Rust test fixtures.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { BatchProcessor, imageToMesh } = require('orfeas')
const { triposrFixture, tempDir, rejectsWithCode } = require('./helpers.cjs')

const TINY = triposrFixture('tiny')
const BORDER_WARNING = 'foreground touches the image border: the object may be cut off'

test('a batch of objects: closed, coloured, with the field and the border warning', async () => {
  const proc = new BatchProcessor({ slots: 2, method: 'triposr', weights: TINY })
  assert.equal(proc.method, 'triposr')
  const stages = new Set()
  const results = await proc.run([triposrFixture('input.png'), triposrFixture('input_border.png')], {
    outDir: tempDir(),
    formats: ['glb', 'field.npy'],
    resolution: 32,
    keepLargest: true,
    onProgress: (ev) => { if (ev.event === 'generation_progress') stages.add(ev.data.stage) },
  })
  for (const r of results) {
    assert.equal(r.status, 'complete', r.error)
    assert.equal(r.method, 'triposr')
    assert.equal(r.depth, 'triposr')
    assert.equal(r.mask, 'alpha')
    assert.equal(r.resolution, 32)
    assert.equal(r.watertight, true)
    assert.deepEqual(r.files.map((f) => f.format), ['glb', 'field.npy'])
  }
  assert.deepEqual(results[0].warnings, [])
  assert.deepEqual(results[1].warnings, [BORDER_WARNING])
  for (const s of ['shape_generation', 'meshing', 'exporting']) assert.ok(stages.has(s), [...stages].join())
  const npy = fs.readFileSync(results[0].files[1].path)
  assert.equal(npy.subarray(0, 6).toString('latin1'), '\x93NUMPY')
  assert.equal(npy.length, 128 + 32 ** 3 * 4)
})

test('imageToMesh makes an object with vertex colours; no foreground rejects with its code', async () => {
  const mesh = await imageToMesh(triposrFixture('input.png'), { method: 'triposr', weights: TINY, resolution: 24 })
  assert.equal(mesh.method, 'triposr')
  assert.equal(mesh.resolution, 24)
  assert.equal(mesh.watertight, true)
  assert.equal(mesh.colors.length, mesh.vertexCount * 3)
  assert.equal(mesh.toBuffer('field.npy').length, 128 + 24 ** 3 * 4)
  const glb = mesh.toBuffer('glb')
  assert.equal(glb.subarray(0, 4).toString('latin1'), 'glTF')
  assert.ok(glb.includes(Buffer.from('COLOR_0')), 'the GLB carries vertex colours')
  // A fully transparent PNG: 8×8 RGBA, alpha 0 everywhere.
  const clear = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAD0lEQVR4nGNgGAUMDAwMAAEIAAGRKR9tAAAAAElFTkSuQmCC',
    'base64',
  )
  await rejectsWithCode(assert, imageToMesh(clear, { method: 'triposr', weights: TINY, resolution: 16 }), 'ERR_NO_FOREGROUND')
})
