// Starts and stops a real `orfeas serve` for the browser test: a free port, a fresh data
// directory, output captured to a log file, /api/health polled until it answers.

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tail(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Runs `<bin> serve --host 127.0.0.1 --port <port> --data-dir <dataDir> ...extraArgs` and waits
 * until /api/health answers 200. Resolves with `{ url, stop }`; `stop()` sends SIGTERM (graceful
 * shutdown) and SIGKILL after 15 s.
 */
export async function startServer({ bin, port, dataDir, extraArgs = [], logFile, timeoutMs = 90_000 }) {
  if (!existsSync(bin)) throw new Error(`no orfeas binary at ${bin}: build it (cargo build --bin orfeas) or set ORFEAS_BIN`);
  const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, ...extraArgs];
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`\n$ ${bin} ${args.join(' ')}\n`);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    // Spawning itself failed (not executable, ...): there will be no 'exit'.
    child.on('error', (error) => {
      exited = { code: error.message, signal: null };
      resolve(exited);
    });
  });

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`orfeas serve exited (${exited.code ?? exited.signal}) before answering:\n${tail(logFile)}`);
    try {
      const response = await fetch(`${url}/api/health`);
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`orfeas serve did not answer /api/health within ${timeoutMs / 1000} s:\n${tail(logFile)}`);
    }
    await sleep(200);
  }

  async function stop() {
    if (exited) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 15_000);
    const result = await exitPromise;
    clearTimeout(timer);
    return result;
  }
  return { url, stop, child };
}
