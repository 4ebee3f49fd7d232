'use strict'
// estimateDepth: the raw estimator output at the image's original size.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { estimateDepth } = require('orfeas')
const { example, rejectsWithCode } = require('./helpers.cjs')

function range(values) {
  let min = Infinity
  let max = -Infinity
  for (const v of values) {
    assert.ok(Number.isFinite(v))
    min = Math.min(min, v)
    max = Math.max(max, v)
  }
  return [min, max]
}

test('a depth map at the original size, from a path or bytes', async () => {
  // product_bottle.jpg is 512 x 384; the map keeps that size whatever the working resolution.
  const map = await estimateDepth(example('product_bottle.jpg'), { depth: 'relief', quality: 'low' })
  assert.equal(map.width, 512)
  assert.equal(map.height, 384)
  assert.ok(map.data instanceof Float32Array)
  assert.equal(map.data.length, 512 * 384)
  assert.equal(map.depth, 'relief')
  const [min, max] = range(map.data)
  assert.ok(max > min, 'a photo is not flat')

  const fromBytes = await estimateDepth(fs.readFileSync(example('product_bottle.jpg')), { depth: 'relief', quality: 'low' })
  assert.deepEqual(fromBytes.data, map.data)
})

test('auto picks an estimator and reports it; inflate follows the mask', async () => {
  const auto = await estimateDepth(example('logo_star.png'))
  assert.ok(['relief', 'inflate', 'depth-anything'].includes(auto.depth), auto.depth)
  const inflated = await estimateDepth(example('logo_star.png'), { depth: 'inflate' })
  assert.equal(inflated.depth, 'inflate')
  assert.equal(inflated.width * inflated.height, inflated.data.length)
  // The transparent corner is background: it sits at the bottom of the inflated shape.
  const [min] = range(inflated.data)
  assert.equal(inflated.data[0], min)
})

test('errors carry codes', async () => {
  await rejectsWithCode(assert, estimateDepth(Buffer.from('GIF89a broken')), 'ERR_IMAGE_DECODE')
  await rejectsWithCode(assert, estimateDepth(example('logo_star.png'), { depth: 'sonar' }), 'ERR_INVALID_INPUT')
  await rejectsWithCode(assert, estimateDepth(example('logo_star.png'), { signal: AbortSignal.abort() }), 'ERR_CANCELLED')
})
