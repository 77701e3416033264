// The web UI across a server restart: the producer and the projector run as their own processes
// on Kafka (KAFKA_BROKERS) and Redis (REDIS_URL); the API that serves the page is killed in the
// middle of the match and started again. The replay is held at chosen minutes (`pause_at`), so
// that the API dies mid-match and the match moves on while it is away, whatever the machine's
// load. The badge shows Reconnecting, then Live; the match centre ends with exactly the server's
// timeline, nothing missing and nothing twice.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { answers, bin, deleteKeys, freePort, launchChromium, root, until } from './support.mjs';

const token = 'e2e-admin-token';
const running = [];

function livescore(role, port, unique) {
  assert.ok(process.env.KAFKA_BROKERS && process.env.REDIS_URL,
    'KAFKA_BROKERS and REDIS_URL must name the test services (scripts/test starts them)');
  const env = {
    ...process.env, ADMIN_TOKEN: token, RUST_LOG: 'warn', KAFKA_TOPIC: unique,
    REDIS_PREFIX: unique, PROJECTOR_GROUP: unique, LISTEN: `127.0.0.1:${port ?? 0}`,
  };
  const child = spawn(bin, [role], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  running.push(child);
  return child;
}

after(() => running.forEach((child) => child.kill('SIGKILL')));

for (const transport of ['sse', 'ws']) {
  test(`the match centre resumes after the API restarts, over ${transport}`, { timeout: 150_000 }, async () => {
    const [apiPort, producerPort] = [await freePort(), await freePort()];
    const unique = `e2e-${transport}-${Date.now()}`;
    const api = `http://127.0.0.1:${apiPort}`;
    const producer = `http://127.0.0.1:${producerPort}`;
    livescore('projector', 0, unique);
    livescore('producer', producerPort, unique);
    let server = livescore('api', apiPort, unique);
    await Promise.all([
      answers(`${api}/healthz`, `${api} did not start`),
      answers(`${producer}/catalog`, 'the producer did not start'),
    ]);
    const admin = (path) => fetch(`${producer}/${path}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    const replay = async () => (await fetch(`${producer}/replays/7457`, { headers: { Authorization: `Bearer ${token}` } })).json();
    const heldAt = (minute) => until(`the replay held at ${minute}'`, async () => {
      const r = await replay();
      return r.status === 'paused' && r.clock?.minute === minute;
    });
    const started = await admin('games/7457?speed=400&pause_at=35');
    assert.equal(started.status, 202);
    await heldAt(35);

    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      await context.addInitScript((t) => localStorage.setItem('transport', t), transport);
      const page = await context.newPage();
      // The match exists once the projector has written its first record.
      await answers(`${api}/games/7457`, 'the match never appeared');
      await page.goto(`${api}/#/game/7457`);
      await page.locator('#badge', { hasText: 'Live' }).waitFor();
      await page.locator('.timeline li').first().waitFor({ timeout: 30_000 });

      // Held at 35', the API dies; the match runs on to 70' while the page cannot hear it; the
      // API comes back on the same port, and the match on to its end.
      server.kill('SIGKILL');
      await page.locator('#badge', { hasText: /Reconnecting|Offline/ }).waitFor();
      assert.equal((await admin('replays/7457/pause?at=70')).status, 200);
      assert.equal((await admin('replays/7457/resume')).status, 200);
      await heldAt(70);
      assert.notEqual(await page.locator('.match-head .status').textContent(), 'FT');
      server = livescore('api', apiPort, unique);
      await page.locator('#badge', { hasText: 'Live' }).waitFor({ timeout: 30_000 });
      // The page says, discreetly, that it picked up where it left off: nothing missed.
      await page.locator('#joined[data-joined="resumed"]', { hasText: 'Resumed: nothing missed' }).waitFor({ timeout: 30_000 });
      assert.equal((await admin('replays/7457/resume')).status, 200);

      await page.locator('.match-head .status', { hasText: 'FT' }).waitFor({ timeout: 90_000 });
      const shown = await page.locator('.timeline li').evaluateAll((items) => items.map((li) => li.dataset.incident));
      const game = await (await fetch(`${api}/games/7457`)).json();
      assert.deepEqual(shown, game.state.incidents.map((i) => i.id), 'the timeline is the server\'s, in order');
      assert.equal(new Set(shown).size, shown.length, 'nothing twice');
      assert.equal(await page.locator('.timeline li.is-goal').count(), 7);
      assert.equal(await page.locator('#score').textContent(), '3 - 4');
    } finally {
      await browser.close();
      running.splice(0).forEach((child) => child.kill('SIGKILL'));
      deleteKeys(unique);
    }
  });
}
