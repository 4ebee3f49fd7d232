// The Batch Studio of a cluster front end in a real browser: a real nats-server, `orfeas serve
// --queue` and two real `orfeas worker` processes. The GPU monitor lists both workers, a batch
// dropped on the page completes on them, a killed worker leaves the monitor, and a lost queue
// is said on the page — all while the page stays open, with no reload.
//
// Environment: as studio.test.mjs, plus ORFEAS_NATS_SERVER (default /usr/sbin/nats-server,
// Debian's package, which scripts/test.sh installs).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { freePort, startServer } from './orfeas-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(repo, 'target');
const bin = process.env.ORFEAS_BIN ?? path.join(targetDir, 'debug', 'orfeas');
const artifacts = path.resolve(process.env.ORFEAS_ARTIFACTS ?? path.join(targetDir, 'test-artifacts'));
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const natsBin = process.env.ORFEAS_NATS_SERVER
  ?? ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p)) ?? 'nats-server';
const IMAGES = ['cat_silhouette.png', 'logo_star.png'].map((f) => path.join(repo, 'examples', f));
// Presence heartbeats every 2 s, forgotten after 6 s, and the page told within a tick.
const MONITOR_MS = 20_000;

const work = mkdtempSync(path.join(tmpdir(), 'orfeas-cluster-studio-'));
mkdirSync(artifacts, { recursive: true });
const log = createWriteStream(path.join(artifacts, 'cluster-studio.log'), { flags: 'a' });
const children = new Map();
let server = null;
let context = null;
let page = null;
const pageErrors = [];

/** Spawns a process whose output goes to the test's log; remembered for cleanup. */
function run(name, command, args) {
  log.write(`\n$ ${command} ${args.join(' ')}\n`);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  child.on('error', (error) => log.write(`${name}: ${error.message}\n`));
  children.set(name, child);
  return child;
}

function kill(name) {
  children.get(name)?.kill('SIGKILL');
  children.delete(name);
}

const workerCard = (id) => page.locator(`[data-testid="gpu-monitor"] .worker-card[data-worker-id="${id}"]`);

before(async () => {
  const natsPort = await freePort();
  const queue = `nats://127.0.0.1:${natsPort}`;
  const nats = run('nats', natsBin, ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', path.join(work, 'nats')]);
  await new Promise((resolve, reject) => {
    nats.once('spawn', resolve);
    nats.once('error', (e) => reject(new Error(`cannot start ${natsBin} (${e.message}): apt-get install nats-server, or set ORFEAS_NATS_SERVER`)));
  });
  server = await startServer({
    bin, port: await freePort(), dataDir: path.join(work, 'data'),
    logFile: path.join(artifacts, 'cluster-studio-server.log'),
    extraArgs: ['--queue', queue, '--depth', 'relief'],
  });
  for (const id of ['studio-w1', 'studio-w2']) {
    run(id, bin, ['worker', '--queue', queue, '--id', id, '--slots', '1', '--depth', 'relief']);
  }
  context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
    executablePath: chromiumPath, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    viewport: { width: 1440, height: 900 },
  });
  page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
});

after(async () => {
  try {
    if (page) await page.screenshot({ path: path.join(artifacts, 'cluster-studio.png'), fullPage: true }).catch(() => {});
    await context?.close();
  } finally {
    for (const name of [...children.keys()]) kill(name);
    await server?.stop();
    log.end();
    rmSync(work, { recursive: true, force: true });
  }
});

describe('Batch Studio in front of a cluster', () => {
  it('lists every worker in the monitor', async () => {
    await page.goto(server.url);
    await page.waitForSelector('[data-testid="connection"][data-state="open"]', { timeout: 15_000 });
    // The workers may join after the page loaded: the monitor follows without a reload.
    for (const id of ['studio-w1', 'studio-w2']) {
      await workerCard(id).waitFor({ timeout: MONITOR_MS });
      assert.match(await workerCard(id).innerText(), /busy of 1/);
    }
    assert.equal(await page.getAttribute('[data-testid="gpu-monitor"]', 'data-mode'), 'cluster');
  });

  it('runs a dropped batch on the workers', async () => {
    await page.setInputFiles('[data-testid="file-input"]', IMAGES);
    await page.selectOption('[data-testid="format-select"]', ['stl', 'glb']);
    await page.selectOption('[data-testid="quality-select"]', 'low');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/batch-generate') && r.request().method() === 'POST'),
      page.click('[data-testid="start-button"]'),
    ]);
    assert.equal(response.status(), 202, await response.text());
    const { job_ids: jobIds } = await response.json();
    await page.waitForFunction((ids) => ids.every((id) => document.querySelector(
      `[data-testid="job-card"][data-job-id="${CSS.escape(id)}"]`)?.dataset.status === 'complete'),
    jobIds, { timeout: 120_000, polling: 200 });
    for (const id of jobIds) {
      const job = await (await fetch(`${server.url}/api/jobs/${id}`)).json();
      assert.ok(['studio-w1', 'studio-w2'].includes(job.worker), JSON.stringify(job));
    }
  });

  it('drops a worker that stopped, and says when the queue is lost', async () => {
    kill('studio-w2');
    await workerCard('studio-w2').waitFor({ state: 'detached', timeout: MONITOR_MS });
    assert.equal(await workerCard('studio-w1').count(), 1);
    kill('nats');
    await page.locator('[data-testid="gpu-monitor"] .queue-warning').waitFor({ timeout: MONITOR_MS });
    assert.deepEqual(pageErrors, []);
  });
});
