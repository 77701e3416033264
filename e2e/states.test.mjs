// The web UI's states other than a match running to its end, in headless Debian Chromium:
// - the admin panel refuses a wrong token with the server's message, then pauses, resumes,
//   changes the speed of and stops a replay, each checked on the server; a stopped replay is
//   shown as stopped on the scoreboard and in the match centre;
// - a match centre opened before its game exists says Offline (SSE: the server answered 404),
//   and goes Live once the game starts;
// - a match whose broker dies says "Updates delayed" once the projector marks it stalled, and
//   "Replay failed" once the broker is back and the producer's failure reaches the store (roles
//   as processes, on a tansu of the test's own, storing in SQLite, and the test Redis).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answers, bin, deleteKeys, freePort, launchChromium, root, startUp, until } from './support.mjs';

const token = 'e2e-states-token';
let browser;
const processes = [];

before(async () => { browser = await launchChromium(); });
after(async () => {
  await browser?.close();
  processes.forEach((child) => child.kill('SIGKILL'));
});

const replayOf = async (base, id) =>
  (await fetch(`${base}/replays/${id}`, { headers: { Authorization: `Bearer ${token}` } })).json();

test('the admin panel refuses a wrong token, then pauses, resumes, sets the speed of and stops a replay', { timeout: 90_000 }, async () => {
  const { base, child } = await startUp(token);
  processes.push(child);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const admin = await context.newPage();
  await admin.goto(`${base}/#/admin`);
  await admin.fill('input[name=token]', 'not-the-token');
  await admin.click('button:has-text("Continue")');
  // Refused: the token is forgotten, and the form says what the server said.
  await admin.locator('#login .error', { hasText: 'wrong admin token' }).waitFor();
  await admin.fill('input[name=token]', token);
  await admin.click('button:has-text("Continue")');

  const start = admin.locator('[data-catalog="7471"]');
  await start.locator('select').selectOption('60');
  await start.locator('button[data-start]').click();
  const row = admin.locator('[data-replay="7471"]');
  await row.locator('.replay-status', { hasText: 'running' }).waitFor();

  await row.locator('button[data-act="pause"]').click();
  await row.locator('.replay-status', { hasText: 'paused' }).waitFor();
  assert.equal((await replayOf(base, 7471)).status, 'paused');
  await row.locator('button[data-act="resume"]').click();
  await row.locator('.replay-status', { hasText: 'running' }).waitFor();
  assert.equal((await replayOf(base, 7471)).status, 'running');
  // The panel redraws every second, but not while a select has the focus.
  const speed = row.locator('select');
  await speed.focus();
  await speed.selectOption('3000');
  await row.locator('button[data-act="speed"]').click();
  await until('speed 3000 on the server', async () => (await replayOf(base, 7471)).speed === 3000);
  await row.locator('button[data-act="stop"]').click();
  await row.locator('.replay-status', { hasText: 'stopped' }).waitFor();
  assert.equal((await replayOf(base, 7471)).status, 'stopped');
  assert.equal(await row.locator('button').count(), 0, 'a stopped replay takes no action');
  assert.equal(await admin.locator('.error').count(), 0, 'no error after the right token');

  const board = await context.newPage();
  await board.goto(`${base}/#/`);
  await board.locator('.card[data-game="7471"] .status', { hasText: 'Replay stopped' }).waitFor();
  const centre = await context.newPage();
  await centre.goto(`${base}/#/game/7471`);
  await centre.locator('.replay-status', { hasText: 'Replay stopped' }).waitFor();
  await context.close();
});

test('a match centre opened before its game exists says Offline, then Live once it starts', { timeout: 60_000 }, async () => {
  const { base, child } = await startUp(token);
  processes.push(child);
  const context = await browser.newContext();
  await context.addInitScript(() => localStorage.setItem('transport', 'sse'));
  const centre = await context.newPage();
  await centre.goto(`${base}/#/game/7457`);
  await centre.locator('#badge', { hasText: 'Offline' }).waitFor();
  const started = await fetch(`${base}/games/7457?speed=60`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(started.status, 202);
  await centre.locator('#badge', { hasText: 'Live' }).waitFor({ timeout: 30_000 });
  await centre.locator('#score').waitFor();
  await context.close();
});

// A tansu of the test's own, storing in SQLite under `dir`: killed and started again, it keeps
// what it acknowledged.
function tansu(port, dir) {
  const url = `tcp://127.0.0.1:${port}`;
  const child = spawn('tansu', ['broker', '--listener-url', url, '--advertised-listener-url', url,
    '--storage-engine', 'sqlite://tansu.db', '--silent'], { cwd: dir, stdio: 'ignore' });
  processes.push(child);
  return child;
}

const listening = (port) => new Promise((resolve) => {
  const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
  socket.on('error', () => resolve(false));
});

test('a match whose broker dies says Updates delayed, then Replay failed once the failure is logged', { timeout: 150_000 }, async () => {
  assert.ok(process.env.REDIS_URL, 'REDIS_URL must name the test Redis (scripts/test starts it)');
  const dir = mkdtempSync(join(tmpdir(), 'livescore-e2e-tansu-'));
  const [brokerPort, producerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  let broker = tansu(brokerPort, dir);
  await until('tansu listening', () => listening(brokerPort));
  const unique = `e2e-states-${Date.now()}`;
  const roles = [];
  const role = (name, port) => {
    const env = {
      ...process.env, ADMIN_TOKEN: token, RUST_LOG: 'warn,librdkafka=off', KAFKA_BROKERS: `127.0.0.1:${brokerPort}`,
      KAFKA_TOPIC: unique, REDIS_PREFIX: unique, PROJECTOR_GROUP: unique, LISTEN: `127.0.0.1:${port}`,
      PROJECTOR_LISTEN: '127.0.0.1:0', DELIVERY_TIMEOUT_MS: '3000', STALL_GRACE_MS: '1000',
    };
    const child = spawn(bin, [name], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
    processes.push(child);
    roles.push(child);
  };
  role('projector', 0);
  role('producer', producerPort);
  role('api', apiPort);
  const [producer, api] = [`http://127.0.0.1:${producerPort}`, `http://127.0.0.1:${apiPort}`];
  await answers(`${producer}/catalog`, 'the producer did not start');
  await answers(`${api}/healthz`, 'the API did not start');
  const started = await fetch(`${producer}/games/7471?speed=60`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(started.status, 202);
  const game = async () => {
    const response = await fetch(`${api}/games/7471`);
    return response.ok ? response.json() : null;
  };
  await until('the match running in the store', async () => (await game())?.replay?.status === 'running');

  const context = await browser.newContext();
  const centre = await context.newPage();
  await centre.goto(`${api}/#/game/7471`);
  await centre.locator('#badge', { hasText: 'Live' }).waitFor();
  assert.equal(await centre.locator('.replay-status').count(), 0, 'a running match says nothing more');
  const board = await context.newPage();
  await board.goto(`${api}/#/`);
  await board.locator('.card[data-game="7471"] .status.is-live').waitFor();

  // The broker dies: no record comes any more. At 60x, two minutes of football are 2 s; with
  // the 1 s grace, the projector marks the match stalled a few seconds later.
  broker.kill('SIGKILL');
  await centre.locator('.replay-status', { hasText: 'Updates delayed' }).waitFor({ timeout: 30_000 });
  await board.locator('.card[data-game="7471"] .status', { hasText: 'Updates delayed' }).waitFor();
  assert.equal(await board.locator('.card[data-game="7471"] .status.is-live').count(), 0, 'not shown live');
  await until('the producer gave the replay up', async () => (await replayOf(producer, 7471)).status === 'failed', 60_000);

  // The broker comes back with its data: the producer's `failed` record reaches the store.
  broker = tansu(brokerPort, dir);
  await centre.locator('.replay-status', { hasText: 'Replay failed' }).waitFor({ timeout: 90_000 });
  await board.locator('.card[data-game="7471"] .status', { hasText: 'Replay failed' }).waitFor();
  assert.equal((await game()).replay.status, 'failed');
  await context.close();
  // The roles first: a projector still running writes keys again after they are deleted (seen:
  // an epoch key left behind).
  roles.forEach((child) => child.kill('SIGKILL'));
  deleteKeys(unique);
});
