// Shared fixtures for the node --test suite. The suite runs against the package as installed
// (require('orfeas') from a folder where `npm install <tarball>` put it); the images are the
// repository's examples/, found through ORFEAS_EXAMPLES or relative to this checkout.
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const examples = process.env.ORFEAS_EXAMPLES || path.resolve(__dirname, '..', '..', 'examples')
if (!fs.existsSync(path.join(examples, 'logo_star.png'))) {
  throw new Error(`examples not found in ${examples}; set ORFEAS_EXAMPLES`)
}

/** Absolute path of an example image. */
function example(name) {
  return path.join(examples, name)
}

/** The Rust tests' TripoSR fixture (tiny random weights and test images) in this checkout. */
function triposrFixture(name = '') {
  return path.join(examples, '..', 'orfeas-core', 'tests', 'fixtures', 'triposr', name)
}

/** A fresh empty directory, removed when the process exits. */
function tempDir(prefix = 'orfeas-node-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Asserts that `promise` rejects with an Error carrying `code`; returns the error. */
async function rejectsWithCode(assert, promise, code) {
  let caught
  await assert.rejects(promise, (e) => {
    caught = e
    return true
  })
  assert.ok(caught instanceof Error, `expected an Error, got ${caught}`)
  assert.equal(caught.code, code, `code of: ${caught.message}`)
  return caught
}

module.exports = { examples, example, triposrFixture, tempDir, rejectsWithCode }
