// What the browser tests and the screenshot script share: where the binary is, a free port, a
// wait for a URL to answer, and Debian's Chromium launched headless.
import assert from 'node:assert/strict';
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
