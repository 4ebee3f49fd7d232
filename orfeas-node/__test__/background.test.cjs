'use strict'
// background (where the foreground mask comes from), segmenterWeights and the mask formats.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')
const { tempDir, rejectsWithCode } = require('./helpers.cjs')

// An empty Hugging Face cache (this file runs in its own process): `auto` means the border
// estimate, `birefnet` has no weights.
process.env.HF_HUB_CACHE = path.join(tempDir('orfeas-node-hf-'), 'hub')
const { BatchProcessor, imageToMesh } = require('orfeas')

const W = 128
const H = 96

/** A dark disc on a white backdrop as a 24-bit BMP (what the border estimate separates). */
function discBmp() {
  const row = Math.ceil((W * 3) / 4) * 4
  const bmp = Buffer.alloc(54 + row * H)
  bmp.write('BM', 0, 'latin1')
  bmp.writeUInt32LE(bmp.length, 2)
  bmp.writeUInt32LE(54, 10)
  bmp.writeUInt32LE(40, 14)
  bmp.writeInt32LE(W, 18)
  bmp.writeInt32LE(-H, 22) // top-down rows
  bmp.writeUInt16LE(1, 26)
  bmp.writeUInt16LE(24, 28)
  bmp.writeUInt32LE(row * H, 34)
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const disc = (x - 64) ** 2 + (y - 48) ** 2 < 30 ** 2
      const [b, g, r] = disc ? [60, 30, 40] : [255, 255, 255]
      bmp.set([b, g, r], 54 + y * row + x * 3)
    }
  }
  return bmp
}

/** Decodes an 8-bit gray, non-interlaced PNG: { width, height, pixels }, checking its chunks. */
function decodeGrayPng(png) {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  let offset = 8
  let ihdr
  const idat = []
  while (offset < png.length) {
    const length = png.readUInt32BE(offset)
    const type = png.toString('latin1', offset + 4, offset + 8)
    const data = png.subarray(offset + 8, offset + 8 + length)
    if (type === 'IHDR') ihdr = data
    if (type === 'IDAT') idat.push(data)
    offset += 12 + length
    if (type === 'IEND') break
  }
  assert.ok(ihdr, 'IHDR chunk')
  const width = ihdr.readUInt32BE(0)
  const height = ihdr.readUInt32BE(4)
  assert.equal(ihdr[8], 8, 'bit depth 8')
  assert.equal(ihdr[9], 0, 'colour type 0 (gray)')
  assert.equal(ihdr[12], 0, 'not interlaced')
  const raw = zlib.inflateSync(Buffer.concat(idat))
  assert.equal(raw.length, height * (width + 1))
  const pixels = Buffer.alloc(width * height)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (width + 1)]
    for (let x = 0; x < width; x++) {
      const v = raw[y * (width + 1) + 1 + x]
      const a = x > 0 ? pixels[y * width + x - 1] : 0
      const b = y > 0 ? pixels[(y - 1) * width + x] : 0
      const c = x > 0 && y > 0 ? pixels[(y - 1) * width + x - 1] : 0
      let predicted
      switch (filter) {
        case 0: predicted = 0; break
        case 1: predicted = a; break
        case 2: predicted = b; break
        case 3: predicted = (a + b) >> 1; break
        case 4: {
          const p = a + b - c
          const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)]
          predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
          break
        }
        default: assert.fail(`unknown PNG filter ${filter}`)
      }
      pixels[y * width + x] = (v + predicted) & 0xff
    }
  }
  return { width, height, pixels }
}

/** The mask of the disc: the image's size, 255 on the disc, 0 in the corners. */
function assertDiscMask(png) {
  const { width, height, pixels } = decodeGrayPng(png)
  assert.equal(width, W)
  assert.equal(height, H)
  assert.equal(pixels[48 * W + 64], 255, 'the disc is the subject')
  assert.equal(pixels[0], 0, 'the corner is background')
  assert.equal(pixels[W * H - 1], 0, 'the far corner is background')
}

/** A `.npy` float32 array: { shape, values }. */
function readNpy(npy) {
  assert.equal(npy.toString('latin1', 1, 6), 'NUMPY')
  const headerLength = npy.readUInt16LE(8)
  const header = npy.toString('latin1', 10, 10 + headerLength)
  assert.match(header, /'descr': '<f4'/)
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number)
  const start = 10 + headerLength
  const values = new Float32Array(npy.buffer.slice(npy.byteOffset + start, npy.byteOffset + npy.length))
  return { shape, values }
}

test('an unknown background is refused listing the valid ones', async () => {
  const e = await rejectsWithCode(assert, imageToMesh(discBmp(), { background: 'rembg' }), 'ERR_INVALID_INPUT')
  assert.match(e.message, /rembg.*auto, alpha, border, birefnet or none/)
  const out = path.join(tempDir(), 'out')
  const proc = new BatchProcessor({ slots: 1 })
  await rejectsWithCode(assert, proc.run([discBmp()], { outDir: out, background: 'rembg' }), 'ERR_INVALID_INPUT')
  assert.equal(fs.existsSync(out), false)
})

test('none and border give the mask they name, and the mesh keeps it', async () => {
  const whole = await imageToMesh(discBmp(), { quality: 'low', background: 'none' })
  const cut = await imageToMesh(discBmp(), { quality: 'low', background: 'border' })
  assert.equal(whole.mask, 'none')
  assert.equal(cut.mask, 'border')
  assert.equal((await imageToMesh(discBmp(), { quality: 'low' })).mask, 'border', 'auto without BiRefNet')
  // The disc (76 of 128 pixels across) alone is narrower than the whole image.
  const width = (mesh) => {
    let [lo, hi] = [Infinity, -Infinity]
    for (let i = 0; i < mesh.vertices.length; i += 3) {
      lo = Math.min(lo, mesh.vertices[i])
      hi = Math.max(hi, mesh.vertices[i])
    }
    return hi - lo
  }
  assert.ok(width(cut) < 0.7 * width(whole), `the disc alone is the narrower relief: ${width(cut)} vs ${width(whole)}`)
  assertDiscMask(cut.toBuffer('mask.png'))
  assert.ok(decodeGrayPng(whole.toBuffer('mask.png')).pixels.every((v) => v === 255))
  const npy = readNpy(cut.toBuffer('mask.npy'))
  // At the model's 1024² input whatever made the mask, so a batch's files share one shape.
  assert.deepEqual(npy.shape, [1024, 1024])
  assert.equal(npy.values[512 * 1024 + 512], 1)
  assert.equal(npy.values[0], 0)

  const proc = new BatchProcessor({ slots: 2 })
  const out = tempDir()
  const none = await proc.run([discBmp(), discBmp()], { outDir: out, quality: 'low', background: 'none' })
  assert.deepEqual(none.map((r) => r.mask), ['none', 'none'])
  const [border] = await proc.run([discBmp()], { outDir: out, quality: 'low', background: 'border' })
  assert.equal(border.status, 'complete', border.error)
  assert.equal(border.mask, 'border')
})

test('mask.png alone writes <stem>.mask.png and makes no mesh', async () => {
  const dir = tempDir()
  const input = path.join(dir, 'disc.bmp')
  fs.writeFileSync(input, discBmp())
  const out = path.join(dir, 'out')
  const proc = new BatchProcessor({ slots: 1 })
  assert.deepEqual(proc.backgrounds, ['auto', 'alpha', 'border', 'none'])
  const [result] = await proc.run([input], { outDir: out, formats: ['mask.png', 'mask.npy'], background: 'border' })
  assert.equal(result.status, 'complete', result.error)
  assert.equal(result.method, 'cutout')
  assert.equal(result.mask, 'border')
  assert.equal(result.triangles, 0)
  assert.deepEqual(result.outputs, [path.join(out, 'disc.mask.png'), path.join(out, 'disc.mask.npy')])
  assert.deepEqual(result.files.map((f) => f.format), ['mask.png', 'mask.npy'])
  assertDiscMask(fs.readFileSync(path.join(out, 'disc.mask.png')))
  assert.deepEqual(readNpy(fs.readFileSync(path.join(out, 'disc.mask.npy'))).shape, [1024, 1024])
  assert.deepEqual(fs.readdirSync(out).sort(), ['disc.mask.npy', 'disc.mask.png'])
})

test('birefnet without weights says how to get them', async () => {
  const proc = new BatchProcessor({ slots: 1 })
  assert.ok(!proc.backgrounds.includes('birefnet'))
  const out = path.join(tempDir(), 'out')
  const e = await rejectsWithCode(
    assert,
    proc.run([discBmp()], { outDir: out, formats: ['mask.png'], background: 'birefnet' }),
    'ERR_WEIGHTS_NOT_FOUND',
  )
  assert.match(e.message, /fetch-model --model birefnet-lite/)
  assert.equal(fs.existsSync(out), false)
  const single = await rejectsWithCode(
    assert,
    imageToMesh(discBmp(), { quality: 'low', background: 'birefnet' }),
    'ERR_WEIGHTS_NOT_FOUND',
  )
  assert.match(single.message, /fetch-model --model birefnet-lite/)
  // Weights named explicitly must be there, whatever the background.
  const missing = path.join(tempDir(), 'no-birefnet')
  assert.throws(() => new BatchProcessor({ slots: 1, segmenterWeights: missing }), (err) => {
    assert.equal(err.code, 'ERR_WEIGHTS_NOT_FOUND')
    assert.match(err.message, /no-birefnet/)
    return true
  })
  await rejectsWithCode(
    assert,
    imageToMesh(discBmp(), { background: 'birefnet', segmenterWeights: missing }),
    'ERR_WEIGHTS_NOT_FOUND',
  )
})
