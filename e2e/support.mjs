// What the browser tests and the screenshot script share: where the binary is, a free port, a
// wait for a URL to answer (and for any condition), `livescore up` started on the in-process
// engines, and Debian's Chromium launched headless.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

export const root = new URL('..', import.meta.url).pathname;
export const bin = process.env.LIVESCORE_BIN ?? `${root}target/debug/livescore`;

// A port for a process the test starts: one nothing listens on now, and that no other test file
// of the run gets. Taken from 12000-18999, below the kernel's ephemeral range (32768-60999): a
// port from listen(0), freed for the process to bind, could go to any outgoing connection or
// another server first. Node's runner may run the files in parallel processes, so the next port
// is kept in a file under target/, under flock(1) (util-linux).
const PORTS = { first: 12_000, end: 19_000, file: `${root}target/tmp/e2e-next-port` };
const nextPort = () => {
  mkdirSync(dirname(PORTS.file), { recursive: true });
  const taken = spawnSync('flock', [`${PORTS.file}.lock`, 'sh', '-c', `
    n=$(cat "$1" 2>/dev/null)
    case $n in ''|*[!0-9]*) n=${PORTS.first} ;; esac
    { [ "$n" -ge ${PORTS.first} ] && [ "$n" -lt ${PORTS.end} ]; } || n=${PORTS.first}
    echo $((n + 1)) >"$1"
    echo "$n"`, 'sh', PORTS.file], { encoding: 'utf8' });
  assert.equal(taken.status, 0, `flock: ${taken.stderr}`);
  return Number(taken.stdout.trim());
};
const bindable = (port) => new Promise((resolve) => {
  const probe = createServer();
  probe.once('error', () => resolve(false));
  probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
});
export async function freePort() {
  for (let tries = 0; tries < PORTS.end - PORTS.first; tries++) {
    const port = nextPort();
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port from ${PORTS.first} to ${PORTS.end}`);
}

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
