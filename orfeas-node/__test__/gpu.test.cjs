'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { gpuStats } = require('orfeas')

test('gpuStats never throws and explains an absent GPU', () => {
  const stats = gpuStats()
  assert.equal(typeof stats.available, 'boolean')
  assert.ok(Array.isArray(stats.gpus))
  if (stats.available) {
    assert.ok(stats.gpus.length > 0)
    for (const g of stats.gpus) {
      assert.equal(typeof g.name, 'string')
      assert.ok(g.memoryTotalMb >= g.memoryUsedMb)
    }
  } else {
    assert.deepEqual(stats.gpus, [])
    assert.equal(typeof stats.reason, 'string')
    assert.ok(stats.reason.length > 0)
  }
})
