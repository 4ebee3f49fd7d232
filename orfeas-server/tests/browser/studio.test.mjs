// The Batch Studio page in a real browser (headless Debian Chromium via playwright-core) against a
// real `orfeas serve`: select images, refuse a non-image, start, watch every card (found by job id)
// reach complete, preview a model in WebGL, download and check files, cancel a queued job, and
// survive a server restart (the page reconnects by itself and re-renders from the snapshot).
//
// Environment: ORFEAS_BIN (default $CARGO_TARGET_DIR/debug/orfeas), CHROMIUM (default
// /usr/bin/chromium), ORFEAS_ARTIFACTS (default $CARGO_TARGET_DIR/test-artifacts),
// ORFEAS_STUDIO_URL (test a server that is already running instead; the restart step is skipped).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

import { checkBinaryStl, checkGlb, zipEntryNames } from './mesh-files.mjs';
import { writeNoisePng } from './noise-png.mjs';
import { freePort, startServer } from './orfeas-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(repo, 'target');
const bin = process.env.ORFEAS_BIN ?? path.join(targetDir, 'debug', 'orfeas');
const artifacts = path.resolve(process.env.ORFEAS_ARTIFACTS ?? path.join(targetDir, 'test-artifacts'));
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const externalUrl = process.env.ORFEAS_STUDIO_URL;
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const IMAGES = ['cat_silhouette.png', 'logo_star.png', 'strip_wave.png'].map((f) => path.join(repo, 'examples', f));
const EXTRA_IMAGE = path.join(repo, 'examples', 'terrain_height16.png');
const BROWSER_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const FINISH_MS = 180_000;

const work = mkdtempSync(path.join(tmpdir(), 'orfeas-studio-'));
let server = null;
let port = 0;
let baseUrl = externalUrl ?? '';
let context = null;
let page = null;
const pageErrors = [];
const offHostRequests = [];
let firstBatch = null;

const card = (jobId) => page.locator(`[data-testid="job-card"][data-job-id="${jobId}"]`);

/** Waits until every listed card has one of `states` as data-status; returns the states. */
async function waitForCards(jobIds, states, timeout = FINISH_MS) {
  await page.waitForFunction(({ ids, want }) => ids.every((id) => {
    const node = document.querySelector(`[data-testid="job-card"][data-job-id="${CSS.escape(id)}"]`);
    return node && want.includes(node.dataset.status);
  }), { ids: jobIds, want: states }, { timeout, polling: 100 });
  return page.evaluate((ids) => ids.map((id) => document.querySelector(`[data-testid="job-card"][data-job-id="${CSS.escape(id)}"]`).dataset.status), jobIds);
}

async function startBatch(files, { formats, quality }) {
  await page.setInputFiles('[data-testid="file-input"]', files);
  await page.selectOption('[data-testid="format-select"]', formats);
  await page.selectOption('[data-testid="quality-select"]', quality);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/batch-generate') && r.request().method() === 'POST'),
    page.click('[data-testid="start-button"]'),
  ]);
  assert.equal(response.status(), 202, `batch-generate answered ${response.status()}: ${await response.text()}`);
  return response.json();
}

async function download(locator, name) {
  const [dl] = await Promise.all([page.waitForEvent('download'), locator.click()]);
  const file = path.join(work, 'downloads', name ?? dl.suggestedFilename());
  mkdirSync(path.dirname(file), { recursive: true });
  const failure = await dl.failure();
  if (failure) throw new Error(`download of ${dl.url()} failed: ${failure}`);
  await dl.saveAs(file);
  return { file, bytes: readFileSync(file), suggested: dl.suggestedFilename() };
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  if (!externalUrl) {
    port = await freePort();
    server = await startServer({
      bin, port, dataDir: path.join(work, 'data'), logFile: path.join(artifacts, 'studio-server.log'),
      extraArgs: ['--slots', '2', '--depth', 'relief'],
    });
    baseUrl = server.url;
  }
  context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
    executablePath: chromiumPath, headless: true, args: BROWSER_FLAGS,
    viewport: { width: 1440, height: 900 }, acceptDownloads: true,
  });
  page = context.pages()[0] ?? await context.newPage();
  // Test instrumentation: remember the name of every WebSocket event the page receives.
  await page.addInitScript(() => {
    window.__wsEvents = [];
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (m) => {
          try { window.__wsEvents.push(JSON.parse(m.data).event); } catch { window.__wsEvents.push('?'); }
        });
      }
    };
  });
  page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // Refused WebSocket connections while the server restarts are expected; nothing else is.
    if (message.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED/.test(message.text())) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!['data:', 'blob:'].includes(url.protocol) && url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
      offHostRequests.push(request.url());
    }
  });
});

after(async () => {
  try {
    if (page) await page.screenshot({ path: path.join(artifacts, 'studio-final.png'), fullPage: true }).catch(() => {});
    await context?.close();
  } finally {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
    console.log(`# artefacts: ${artifacts}/studio.png, studio-final.png, studio-server.log`);
  }
});

describe('Batch Studio in Chromium', () => {
  it('serves the page with every asset from the binary and goes live over /ws', async () => {
    const response = await page.goto(baseUrl);
    assert.equal(response.status(), 200);
    await page.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: 15_000 });
    await page.waitForSelector('#server-info[data-ready="true"]');
    for (const id of ['file-input', 'drop-zone', 'format-select', 'quality-select', 'start-button',
      'download-all', 'stats-bar', 'gpu-monitor', 'preview', 'background-select']) {
      assert.equal(await page.locator(`[data-testid="${id}"]`).count(), 1, `data-testid=${id}`);
    }
    const mode = await page.locator('[data-testid="gpu-monitor"]').getAttribute('data-mode');
    assert.ok(['cpu', 'gpu'].includes(mode), `gpu monitor mode ${mode}`);
    if (mode === 'cpu') assert.match(await page.locator('[data-testid="gpu-monitor"]').innerText(), /CPU mode/);
    assert.ok(await page.evaluate(() => window.__wsEvents.includes('snapshot')), 'the server sent a snapshot first');
  });

  it('offers the full 3D object, disabled with the reason when the server has no TripoSR weights', async () => {
    const health = await (await fetch(`${baseUrl}/api/health`)).json();
    assert.ok(Array.isArray(health.methods) && health.methods.includes('relief'), JSON.stringify(health));
    const option = page.locator('[data-testid="method-select"] option[value="triposr"]');
    assert.equal(await option.count(), 1);
    assert.equal((await option.innerText()).trim(), 'Full 3D object');
    const runnable = health.methods.includes('triposr');
    assert.equal(await option.isDisabled(), !runnable, `methods ${health.methods}`);
    if (!runnable) {
      assert.match(await option.getAttribute('title'), /TripoSR weights/);
      assert.match(await page.locator('[data-testid="method-hint"]').innerText(), /fetch-model --model triposr/);
    }
  });

  it('offers background removal, BiRefNet disabled with the reason when the server has no weights', async () => {
    const health = await (await fetch(`${baseUrl}/api/health`)).json();
    assert.ok(Array.isArray(health.backgrounds) && health.backgrounds.includes('border'), JSON.stringify(health));
    const select = page.locator('[data-testid="background-select"]');
    assert.deepEqual(await select.locator('option').evaluateAll((os) => os.map((o) => o.value)),
      ['auto', 'birefnet', 'alpha', 'border', 'none']);
    assert.equal(await select.inputValue(), 'auto');
    const birefnet = select.locator('option[value="birefnet"]');
    const usable = health.backgrounds.includes('birefnet');
    assert.equal(await birefnet.isDisabled(), !usable, `backgrounds ${health.backgrounds}`);
    if (!usable) {
      assert.match(await birefnet.getAttribute('title'), /BiRefNet weights/);
      assert.match(await page.locator('[data-testid="background-hint"]').innerText(), /fetch-model --model birefnet-lite/);
    }
  });

  it('refuses a non-image visibly and lets a file be removed before the start', async () => {
    const text = path.join(work, 'notes.txt');
    writeFileSync(text, 'not an image\n');
    await page.setInputFiles('[data-testid="file-input"]', [...IMAGES, EXTRA_IMAGE, text]);
    const rejected = page.locator('[data-testid="rejected-file"]', { hasText: 'notes.txt' });
    await rejected.waitFor();
    assert.match(await rejected.innerText(), /not a supported image/i);
    assert.equal(await page.locator('[data-testid="pending-file"]').count(), IMAGES.length + 1);
    await page.click(`[data-testid="remove-file"][aria-label="Remove ${path.basename(EXTRA_IMAGE)}"]`);
    assert.equal(await page.locator('[data-testid="pending-file"]').count(), IMAGES.length);
    assert.match(await page.locator('[data-testid="start-button"]').innerText(), new RegExp(`Generate ${IMAGES.length} models`));
    // Clear the selection again: the next step selects its own files.
    await page.click('#clear-pending');
    assert.equal(await page.locator('[data-testid="pending-file"]').count(), 0);
    assert.ok(await page.locator('[data-testid="start-button"]').isDisabled());
  });

  it('runs a batch: every card, found by its job id, reaches complete', async () => {
    firstBatch = await startBatch(IMAGES, { formats: ['stl', 'glb'], quality: 'low' });
    assert.equal(firstBatch.job_ids.length, IMAGES.length, JSON.stringify(firstBatch));
    const states = await waitForCards(firstBatch.job_ids, ['complete', 'error', 'cancelled']);
    const errors = await page.locator('[data-testid="job-card"][data-status="error"] [data-testid="job-error"]').allInnerTexts();
    assert.deepEqual(states, firstBatch.job_ids.map(() => 'complete'), `job errors: ${errors.join('; ')}`);
    for (const id of firstBatch.job_ids) {
      const c = card(id);
      assert.equal(await c.locator('[data-testid="job-progress"]').getAttribute('aria-valuenow'), '100');
      // One download per format, and the mask the Studio asks for beside them for the cut-out.
      const formats = await c.locator('[data-testid="download-button"]').evaluateAll((bs) => bs.map((b) => b.dataset.format));
      assert.deepEqual(formats.sort(), ['glb', 'mask.png', 'stl']);
      assert.equal(await c.locator('[data-testid="cancel-button"]').count(), 0);
      // The card shows the cut-out of the file it was made from (matched by name, not position):
      // the uploaded image under its mask.png.
      const cutout = c.locator('.job-thumb img[data-testid="job-cutout"]');
      await cutout.waitFor();
      assert.match((await cutout.getAttribute('src')) ?? '', /^blob:/);
      const maskUrl = await cutout.evaluate((img) => getComputedStyle(img).maskImage);
      assert.match(maskUrl, /mask\.png/, maskUrl);
      const png = new Uint8Array(await (await fetch(new URL(maskUrl.match(/url\("?([^")]+)"?\)/)[1], baseUrl))).arrayBuffer());
      const ihdr = new DataView(png.buffer, 16, 13);
      assert.equal(png[25], 0, 'mask.png is gray');
      assert.equal(png[24], 8, 'mask.png has 8 bits');
      const natural = await cutout.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
      assert.deepEqual([ihdr.getUint32(0), ihdr.getUint32(4)], natural, 'the mask is at the image size');
    }
    const names = await Promise.all(firstBatch.job_ids.map((id) => card(id).locator('.job-name').innerText()));
    assert.deepEqual([...names].sort(), IMAGES.map((f) => path.basename(f)).sort());
    const stat = (name) => page.locator(`[data-testid="stats-bar"] [data-stat="${name}"] dd`).innerText();
    // The stats bar counts every job the page shows (a reused server may have older ones).
    const shown = (status) => page.locator(`[data-testid="job-card"][data-status="${status}"]`).count();
    assert.equal(await stat('total'), String(await page.locator('[data-testid="job-card"]').count()));
    assert.equal(await stat('complete'), String(await shown('complete')));
    assert.ok(Number(await stat('complete')) >= IMAGES.length);
    assert.equal(await stat('processing'), String(await shown('processing')));
    assert.equal(await stat('queued'), String(await shown('queued')));
    assert.equal(await stat('failed'), String(await shown('error')));
    const events = await page.evaluate(() => window.__wsEvents);
    assert.ok(events.includes('generation_progress'), 'progress events reached the page');
    assert.equal(events.filter((e) => e === 'generation_complete').length >= IMAGES.length, true);
  });

  it('shows a finished model in the interactive 3D preview', async () => {
    const id = firstBatch.job_ids[0];
    await card(id).locator('[data-testid="preview-button"]').click();
    await page.waitForFunction((jobId) => {
      const p = document.querySelector('[data-testid="preview"]');
      return p.dataset.jobId === jobId && ['ready', 'error'].includes(p.dataset.state);
    }, id, { timeout: 30_000 });
    const preview = page.locator('[data-testid="preview"]');
    assert.equal(await preview.getAttribute('data-state'), 'ready', await preview.innerText());
    assert.ok(Number(await preview.getAttribute('data-triangles')) > 0);
    await page.waitForTimeout(300); // let damping settle
    const pixels = await page.evaluate(() => {
      const canvas = document.querySelector('[data-testid="preview"] canvas');
      const copy = document.createElement('canvas');
      copy.width = canvas.width;
      copy.height = canvas.height;
      const ctx = copy.getContext('2d');
      ctx.drawImage(canvas, 0, 0);
      // The model is framed in the middle: its centre box must be mostly painted, in many shades.
      const x0 = Math.floor(canvas.width * 0.4);
      const y0 = Math.floor(canvas.height * 0.4);
      const w = Math.floor(canvas.width * 0.2);
      const h = Math.floor(canvas.height * 0.2);
      const data = ctx.getImageData(x0, y0, w, h).data;
      let painted = 0;
      const shades = new Set();
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] > 200) {
          painted += 1;
          shades.add(((data[i] >> 3) << 10) | ((data[i + 1] >> 3) << 5) | (data[i + 2] >> 3));
        }
      }
      return { width: canvas.width, height: canvas.height, painted: painted / (w * h), shades: shades.size };
    });
    assert.ok(pixels.width > 100 && pixels.height > 100, JSON.stringify(pixels));
    assert.ok(pixels.painted > 0.5, `centre of the preview is blank: ${JSON.stringify(pixels)}`);
    assert.ok(pixels.shades >= 8, `the model is one flat colour: ${JSON.stringify(pixels)}`);
    // Orbiting by keyboard changes the picture (the controls are live).
    await page.locator('#viewport').focus();
    await page.click('#preview-rotate');
    assert.equal(await page.locator('#preview-rotate').getAttribute('aria-pressed'), 'true');
    await page.click('#preview-rotate');
  });

  it('has no serious accessibility problems (axe-core, WCAG 2 A/AA), in the light and the dark theme', async () => {
    await page.addScriptTag({ path: axePath });
    const audit = () => page.evaluate(async () => {
      const result = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
      return result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 6).map((n) => n.target.join(' ')).join(', ')}`);
    });
    try {
      for (const colorScheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme });
        await page.waitForTimeout(600); // colour transitions finish before contrast is measured
        assert.deepEqual(await audit(), [], `${colorScheme} theme`);
      }
    } finally {
      await page.emulateMedia({ colorScheme: 'light' });
    }
  });

  it('downloads a job\'s STL and GLB and the batch ZIP, and the files are what they claim', async () => {
    const id = firstBatch.job_ids[0];
    const stl = await download(card(id).locator('[data-testid="download-button"][data-format="stl"]'), 'job.stl');
    const triangles = checkBinaryStl(stl.bytes);
    assert.ok(triangles > 100, `STL has ${triangles} triangles`);
    const glb = await download(card(id).locator('[data-testid="download-button"][data-format="glb"]'), 'job.glb');
    checkGlb(glb.bytes);
    const zip = await download(page.locator('[data-testid="download-all"]'), 'batch.zip');
    const names = zipEntryNames(zip.bytes);
    assert.equal(names.filter((n) => n.endsWith('.stl')).length, IMAGES.length, names.join(', '));
    assert.equal(names.filter((n) => n.endsWith('.glb')).length, IMAGES.length, names.join(', '));
    await page.evaluate(() => window.scrollTo(0, 0));
    const shot = path.join(artifacts, 'studio.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# screenshot: ${shot}`);
  });

  it('cancels a queued job; the rest of its batch completes', async () => {
    // One job at a time and two slow (noisy, high quality) images around a quick one: jobs start
    // in upload order, so the quick one and the second slow one wait behind the first for
    // seconds; and in any order, one slow job is queued while the other two run.
    const files = [path.join(work, 'noise-a.png'), IMAGES[0], path.join(work, 'noise-b.png')];
    writeNoisePng(files[0], 1536, 1);
    writeNoisePng(files[2], 1536, 2);
    await page.fill('[data-testid="batch-size"]', '1');
    const batch = await startBatch(files, { formats: ['stl'], quality: 'high' });
    await page.fill('[data-testid="batch-size"]', '');
    assert.equal(batch.job_ids.length, files.length);
    const target = await page.waitForFunction((ids) => {
      const queued = ids.filter((id) => document.querySelector(`[data-testid="job-card"][data-job-id="${CSS.escape(id)}"]`)?.dataset.status === 'queued');
      return queued.length ? queued[queued.length - 1] : null;
    }, batch.job_ids, { timeout: 10_000 }).then((handle) => handle.jsonValue());
    await card(target).locator('[data-testid="cancel-button"]').click();
    await waitForCards([target], ['cancelled'], 30_000);
    assert.equal(await card(target).locator('[data-testid="download-button"]').count(), 0);
    assert.equal(await card(target).locator('[data-testid="cancel-button"]').count(), 0);
    const rest = batch.job_ids.filter((id) => id !== target);
    const errors = () => page.locator('[data-testid="job-card"][data-status="error"] [data-testid="job-error"]').allInnerTexts();
    const states = await waitForCards(rest, ['complete', 'error', 'cancelled']);
    assert.deepEqual(states, rest.map(() => 'complete'), `job errors: ${(await errors()).join('; ')}`);
  });

  it('reconnects by itself after the server restarts and re-renders from the snapshot', { skip: externalUrl ? 'ORFEAS_STUDIO_URL: not our server' : false }, async () => {
    await server.stop();
    await page.waitForSelector('[data-testid="connection"][data-state="closed"]', { timeout: 15_000 });
    const before = await page.evaluate(() => window.__wsEvents.filter((e) => e === 'snapshot').length);
    server = await startServer({
      bin, port, dataDir: path.join(work, 'data'), logFile: path.join(artifacts, 'studio-server.log'),
      extraArgs: ['--slots', '2', '--depth', 'relief'],
    });
    await page.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: 30_000 });
    await page.waitForFunction((n) => window.__wsEvents.filter((e) => e === 'snapshot').length > n, before, { timeout: 10_000 });
    // Finished jobs outlive the restart and their cards are still there, by id.
    assert.deepEqual(await waitForCards(firstBatch.job_ids, ['complete'], 10_000), firstBatch.job_ids.map(() => 'complete'));
    // Live events flow again on the new connection.
    const batch = await startBatch([IMAGES[1]], { formats: ['glb'], quality: 'low' });
    assert.deepEqual(await waitForCards(batch.job_ids, ['complete', 'error', 'cancelled']), ['complete']);
  });

  it('makes a full 3D object on a server with TripoSR weights and shows it, coloured, all the way round', { skip: externalUrl ? 'ORFEAS_STUDIO_URL: not our server' : false }, async () => {
    const objectPort = await freePort();
    const tiny = path.join(repo, 'orfeas-core', 'tests', 'fixtures', 'triposr');
    const objects = await startServer({
      bin, port: objectPort, dataDir: path.join(work, 'data-objects'), logFile: path.join(artifacts, 'studio-server.log'),
      extraArgs: ['--slots', '2', '--method', 'triposr', '--weights', path.join(tiny, 'tiny'), '--resolution', '48'],
    });
    try {
      await page.goto(objects.url);
      await page.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: 15_000 });
      await page.waitForSelector('#server-info[data-ready="true"]');
      const option = page.locator('[data-testid="method-select"] option[value="triposr"]');
      assert.equal(await option.isDisabled(), false, 'this server can run TripoSR');
      await page.selectOption('[data-testid="method-select"]', 'triposr');
      assert.ok(await page.locator('[data-testid="depth-mm"]').isDisabled(), 'relief height is not an object setting');
      const batch = await startBatch([path.join(tiny, 'input.png')], { formats: ['glb'], quality: 'low' });
      const [id] = batch.job_ids;
      assert.deepEqual(await waitForCards([id], ['complete', 'error', 'cancelled']), ['complete'],
        await card(id).innerText());
      assert.match(await card(id).locator('[data-testid="job-stage"]').innerText(), /full 3D object/);
      const events = await page.evaluate(() => window.__wsEvents);
      assert.ok(events.includes('generation_complete'));

      await card(id).locator('[data-testid="preview-button"]').click();
      await page.waitForFunction((jobId) => {
        const p = document.querySelector('[data-testid="preview"]');
        return p.dataset.jobId === jobId && ['ready', 'error'].includes(p.dataset.state);
      }, id, { timeout: 30_000 });
      const preview = page.locator('[data-testid="preview"]');
      assert.equal(await preview.getAttribute('data-state'), 'ready', await preview.innerText());
      assert.equal(await preview.getAttribute('data-kind'), 'object');
      assert.equal(await preview.getAttribute('data-vertex-colors'), 'true', 'COLOR_0 reaches the material');
      await page.waitForTimeout(300);
      const picture = () => page.evaluate(() => {
        const canvas = document.querySelector('[data-testid="preview"] canvas');
        const copy = document.createElement('canvas');
        copy.width = 64;
        copy.height = 64;
        const ctx = copy.getContext('2d');
        ctx.drawImage(canvas, 0, 0, 64, 64);
        const data = ctx.getImageData(0, 0, 64, 64).data;
        let painted = 0;
        const shades = new Set();
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3] > 200) {
            painted += 1;
            shades.add(((data[i] >> 3) << 10) | ((data[i + 1] >> 3) << 5) | (data[i + 2] >> 3));
          }
        }
        return { painted: painted / (64 * 64), shades: shades.size, pixels: Array.from(data) };
      });
      const front = await picture();
      assert.ok(front.painted > 0.05, `nothing drawn: ${front.painted}`);
      assert.ok(front.shades >= 8, `the object is one flat colour: ${front.shades} shades`);
      // Drag across the viewport: the object turns (round the vertical axis, then over the top).
      const box = await page.locator('#viewport').boundingBox();
      const cx = box.x + box.width / 2;
      const cy = box.y + box.height / 2;
      const differs = (a, b) => a.pixels.reduce((n, v, i) => n + (Math.abs(v - b.pixels[i]) > 24 ? 1 : 0), 0) / a.pixels.length;
      let last = front;
      for (const [dx, dy] of [[box.width * 0.45, 0], [box.width * 0.45, 0], [0, box.height * 0.45]]) {
        await page.mouse.move(cx, cy);
        await page.mouse.down();
        await page.mouse.move(cx + dx, cy + dy, { steps: 12 });
        await page.mouse.up();
        await page.waitForTimeout(400);
        const now = await picture();
        assert.ok(differs(last, now) > 0.01, 'the picture changed as the object turned');
        assert.ok(now.painted > 0.02, 'the object stays in view');
        last = now;
      }
      await page.screenshot({ path: path.join(artifacts, 'studio-object.png'), fullPage: true });
    } finally {
      await objects.stop();
    }
  });

  it('made no request off this machine and raised no page errors', () => {
    assert.deepEqual(offHostRequests, []);
    assert.deepEqual(pageErrors, []);
  });
});
