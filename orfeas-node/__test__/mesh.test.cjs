'use strict'
// imageToMesh: paths and buffers in, typed arrays and file bytes out, coded errors.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { imageToMesh, Mesh } = require('orfeas')
const { example, tempDir, rejectsWithCode } = require('./helpers.cjs')

test('a path gives a closed mesh with consistent typed arrays', async () => {
  const mesh = await imageToMesh(example('logo_star.png'), { quality: 'low', depth: 'inflate' })
  assert.ok(mesh instanceof Mesh)
  const { vertices, faces } = mesh
  assert.ok(vertices instanceof Float32Array)
  assert.ok(faces instanceof Uint32Array)
  assert.equal(vertices.length, mesh.vertexCount * 3)
  assert.equal(faces.length, mesh.triangleCount * 3)
  assert.ok(mesh.triangleCount > 100, `only ${mesh.triangleCount} triangles`)
  assert.equal(mesh.depth, 'inflate')
  assert.equal(mesh.watertight, true)
  let maxIndex = 0
  for (const i of faces) maxIndex = Math.max(maxIndex, i)
  assert.ok(maxIndex < mesh.vertexCount, 'every face index names a vertex')
  // Default width is 100 mm for the whole image; the star's solid covers most of it.
  let minX = Infinity
  let maxX = -Infinity
  for (let i = 0; i < vertices.length; i += 3) {
    assert.ok(Number.isFinite(vertices[i]) && Number.isFinite(vertices[i + 1]) && Number.isFinite(vertices[i + 2]))
    minX = Math.min(minX, vertices[i])
    maxX = Math.max(maxX, vertices[i])
  }
  assert.ok(maxX - minX > 50 && maxX - minX <= 100.001, `x extent ${maxX - minX}`)
})

test('a Buffer gives the same mesh as the path, and options shape it', async () => {
  const file = example('heart.bmp')
  const fromPath = await imageToMesh(file, { quality: 'low', depth: 'relief', widthMm: 50 })
  const fromBuffer = await imageToMesh(fs.readFileSync(file), { quality: 'low', depth: 'relief', widthMm: 50 })
  assert.equal(fromBuffer.triangleCount, fromPath.triangleCount)
  assert.deepEqual(fromBuffer.vertices, fromPath.vertices)
  assert.deepEqual(fromBuffer.faces, fromPath.faces)
  const surface = await imageToMesh(new Uint8Array(fs.readFileSync(file)), { quality: 'low', depth: 'relief', solid: false })
  assert.equal(surface.watertight, false)
  assert.ok(surface.triangleCount < fromPath.triangleCount, 'an open surface has no walls or base')
})

test('toBuffer writes every format', async () => {
  const mesh = await imageToMesh(example('cat_silhouette.png'), { quality: 'low' })
  const stl = mesh.toBuffer('stl')
  assert.ok(Buffer.isBuffer(stl))
  assert.equal(stl.length, 84 + 50 * mesh.triangleCount, 'binary STL: header + 50 bytes per triangle')
  assert.equal(stl.readUInt32LE(80), mesh.triangleCount)
  const glb = mesh.toBuffer('glb')
  assert.equal(glb.toString('latin1', 0, 4), 'glTF')
  assert.equal(glb.readUInt32LE(8), glb.length, 'GLB header length is the file length')
  assert.match(mesh.toBuffer('ply').toString('latin1', 0, 200), /^ply\nformat binary_little_endian 1\.0\n/)
  assert.match(mesh.toBuffer('obj').toString('utf8'), /^v /m)
  assert.match(mesh.toBuffer('stl-ascii').toString('utf8'), /^solid /)
  assert.equal(mesh.toBuffer('3mf').toString('latin1', 0, 2), 'PK')
  assert.equal(mesh.toBuffer('depth16').toString('latin1', 1, 4), 'PNG')
  assert.equal(mesh.toBuffer('depth.npy').toString('latin1', 1, 6), 'NUMPY')
  assert.throws(() => mesh.toBuffer('dwg'), (e) => e.code === 'ERR_INVALID_INPUT' && /dwg/.test(e.message))
})

test('bad images reject with stable codes', async () => {
  const dir = tempDir()
  const text = path.join(dir, 'notes.png')
  fs.writeFileSync(text, 'this is not an image\n')
  const png = fs.readFileSync(example('logo_star.png'))
  const truncated = path.join(dir, 'truncated.png')
  fs.writeFileSync(truncated, png.subarray(0, 200))
  await rejectsWithCode(assert, imageToMesh(text), 'ERR_UNSUPPORTED_FORMAT')
  const decode = await rejectsWithCode(assert, imageToMesh(truncated), 'ERR_IMAGE_DECODE')
  assert.match(decode.message, /truncated\.png/, 'the message names the file')
  await rejectsWithCode(assert, imageToMesh(path.join(dir, 'missing.png')), 'ERR_IO')
  await rejectsWithCode(assert, imageToMesh(Buffer.alloc(0)), 'ERR_EMPTY_INPUT')
})

test('bad arguments reject with ERR_INVALID_INPUT', async () => {
  const star = example('logo_star.png')
  await rejectsWithCode(assert, imageToMesh(42), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, imageToMesh(''), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, imageToMesh(star, 'low'), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, imageToMesh(star, { quality: 'ultra' }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, imageToMesh(star, { depth: 'lidar' }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, imageToMesh(star, { widthMm: -5 }), 'ERR_INVALID_INPUT')
  const typed = await rejectsWithCode(assert, imageToMesh(star, { quality: 3 }), 'ERR_INVALID_INPUT')
  assert.match(typed.message, /options/)
  await rejectsWithCode(assert, imageToMesh(star, { depth: 'depth-anything', weights: '/nonexistent/weights' }), 'ERR_WEIGHTS_NOT_FOUND')
})

test('an aborted signal rejects with ERR_CANCELLED', async () => {
  await rejectsWithCode(assert, imageToMesh(example('logo_star.png'), { signal: AbortSignal.abort() }), 'ERR_CANCELLED')
  const controller = new AbortController()
  const pending = imageToMesh(example('product_bottle.jpg'), { quality: 'high', signal: controller.signal })
  controller.abort()
  await rejectsWithCode(assert, pending, 'ERR_CANCELLED')
})

test('Mesh cannot be constructed from JavaScript', () => {
  assert.throws(() => new Mesh())
})
