// What the browser tests and the screenshot script share: where the binary is, a free port, a
// wait for a URL to answer (and for any condition), `livescore up` started on the in-process
// engines, and Debian's Chromium launched headless.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { chromium } from 'playwright-core';

export const root = new URL('..', import.meta.url).pathname;
export const bin = process.env.LIVESCORE_BIN ?? `${root}target/debug/livescore`;

export const freePort = () => new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});

// Waits until `url` answers 2xx, for at most 30 s; fails with `what` otherwise.
export async function answers(url, what) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try { if ((await fetch(url)).ok) return; } catch { /* not yet */ }
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const launchChromium = () => chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// A `livescore up` on the in-process engines (the test's KAFKA_BROKERS and REDIS_URL left out),
// on a free port, with the admin token `token`; its base URL once it answers, and its process.
export async function startUp(token, extraEnv = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, LISTEN: `127.0.0.1:${port}`, ADMIN_TOKEN: token, RUST_LOG: 'warn', ...extraEnv };
  delete env.KAFKA_BROKERS;
  delete env.REDIS_URL;
  const child = spawn(bin, ['up'], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  await answers(`${base}/healthz`, 'livescore up did not start');
  return { base, child };
}

// Polls `check` (async, truthy when done) every 100 ms for at most `ms`; fails with `what`.
export async function until(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, `${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Deletes the test Redis's keys under `prefix` (SCAN, then UNLINK: never a server-wide command),
// with Debian's redis-cli, which comes with redis-server.
export function deleteKeys(prefix) {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const done = spawnSync('sh', ['-c',
    'redis-cli -u "$1" --scan --pattern "$2*" | xargs -r redis-cli -u "$1" unlink >/dev/null', '_', url, prefix]);
  assert.equal(done.status, 0, `deleting the keys under ${prefix}: ${done.stderr}`);
}
