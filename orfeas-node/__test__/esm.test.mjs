// The ES module entry exposes the same binding as require('orfeas').
import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import orfeas, { BatchProcessor, Mesh, imageToMesh, estimateDepth, gpuStats } from 'orfeas'
import helpers from './helpers.cjs'

const require = createRequire(import.meta.url)

test('import and require give the same binding', () => {
  const cjs = require('orfeas')
  assert.equal(orfeas, cjs)
  assert.equal(BatchProcessor, cjs.BatchProcessor)
  assert.equal(Mesh, cjs.Mesh)
  assert.equal(imageToMesh, cjs.imageToMesh)
  assert.equal(estimateDepth, cjs.estimateDepth)
  assert.equal(gpuStats, cjs.gpuStats)
})

test('the API works through import', async () => {
  const mesh = await imageToMesh(helpers.example('pebble.webp'), { quality: 'low' })
  assert.ok(mesh.triangleCount > 0)
  assert.equal(typeof gpuStats().available, 'boolean')
})
