// What no anchor offers, in headless Debian Chromium:
// - who is watching: the scoreboard's cards and the site, and the match centre, count the
//   pages open on them;
// - the match at any minute: the match centre's slider shows the server's state at the end of
//   the minute chosen (GET /games/{id}?at=), says it shows the past, and goes back to live;
// - a rebuild of the store from the log sends every game line again, marked republished: the
//   scoreboard shows them without a single goal alert; a goal scored after it alerts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { answers, bin, deleteKeys, freePort, launchChromium, root, startUp, until } from './support.mjs';

const token = 'e2e-features-token';
let browser;
const processes = [];

before(async () => { browser = await launchChromium(); });
after(async () => {
  await browser?.close();
  processes.forEach((child) => child.kill('SIGKILL'));
});

const admin = (base, path, method = 'POST') =>
  fetch(`${base}/${path}`, { method, headers: { Authorization: `Bearer ${token}` } });
const finished = (base, id) => until(`match ${id} finished`, async () => {
  const response = await fetch(`${base}/games/${id}`);
  return response.ok && (await response.json()).replay.status === 'finished';
}, 90_000);

test('pages count as viewers, and the match centre scrubs through the match and back to live', { timeout: 120_000 }, async () => {
  const { base, child } = await startUp(token, { PRESENCE_INTERVAL_MS: '200' });
  processes.push(child);
  assert.equal((await admin(base, 'games/7471?speed=max')).status, 202);
  await finished(base, 7471);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const board = await context.newPage();
  await board.goto(`${base}/#/`);
  const centres = [await context.newPage(), await context.newPage()];
  for (const centre of centres) await centre.goto(`${base}/#/game/7471`);
  // Two pages on the match, three on the site.
  await board.locator('.card[data-game="7471"] .watching[data-watching="2"]', { hasText: '2 watching' }).waitFor({ timeout: 30_000 });
  await board.locator('[data-site-watching="3"]').waitFor({ timeout: 30_000 });
  await centres[0].locator('.match-head .watching[data-watching="2"]').waitFor({ timeout: 30_000 });
  // One leaves: the others see it.
  await centres[1].close();
  await centres[0].locator('.match-head .watching[data-watching="1"]').waitFor({ timeout: 30_000 });
  await board.locator('[data-site-watching="2"]').waitFor({ timeout: 30_000 });

  // The slider runs over the minutes played; at 45' the page is the server's match at 45'.
  const centre = centres[0];
  const slider = centre.locator('#minute');
  await slider.waitFor();
  assert.equal(await slider.getAttribute('max'), '90');
  const at45 = await (await fetch(`${base}/games/7471?at=45`)).json();
  await slider.evaluate((input) => { input.value = '45'; input.dispatchEvent(new Event('input', { bubbles: true })); });
  await centre.locator('#minute-shown', { hasText: "45'" }).waitFor();
  await centre.locator('#view.in-the-past').waitFor();
  const score = `${at45.state.score.home} - ${at45.state.score.away}`;
  await centre.locator('#score', { hasText: score }).waitFor();
  assert.equal(await centre.locator('.timeline li').count(), at45.state.incidents.length);
  const final = await (await fetch(`${base}/games/7471`)).json();
  assert.notEqual(at45.state.incidents.length, final.state.incidents.length, 'the half differs from the end');
  // Back to live: the match as it stands.
  await centre.locator('[data-live]').click();
  await centre.locator('#score', { hasText: `${final.state.score.home} - ${final.state.score.away}` }).waitFor();
  assert.equal(await centre.locator('#view.in-the-past').count(), 0);
  assert.equal(await centre.locator('.timeline li').count(), final.state.incidents.length);
  await context.close();
});

test('a rebuild of the store shows the old goals again without alerting; a new goal alerts', { timeout: 240_000 }, async () => {
  assert.ok(process.env.REDIS_URL && process.env.KAFKA_BROKERS, 'REDIS_URL and KAFKA_BROKERS must name the test servers (scripts/test starts them)');
  const unique = `e2e-rebuild-${Date.now()}`;
  const [producerPort, apiPort, projectorPort] = [await freePort(), await freePort(), await freePort()];
  const role = (name, args = [], port = 0) => {
    const env = {
      ...process.env, ADMIN_TOKEN: token, RUST_LOG: 'warn,librdkafka=off', KAFKA_TOPIC: unique,
      REDIS_PREFIX: unique, PROJECTOR_GROUP: unique, LISTEN: `127.0.0.1:${port}`,
      PROJECTOR_LISTEN: `127.0.0.1:${projectorPort}`,
    };
    const child = spawn(bin, [name, ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
    processes.push(child);
    return child;
  };
  try {
    const projector = role('projector');
    role('producer', [], producerPort);
    role('api', [], apiPort);
    const [producer, api] = [`http://127.0.0.1:${producerPort}`, `http://127.0.0.1:${apiPort}`];
    await answers(`${producer}/catalog`, 'the producer did not start');
    await answers(`${api}/healthz`, 'the API did not start');
    await answers(`http://127.0.0.1:${projectorPort}/readyz`, 'the projector did not start');
    assert.equal((await admin(producer, 'games/7471?speed=max')).status, 202);
    await finished(api, 7471);

    // A scoreboard with goal alerts on (the Notifications API recorded, not shown), watching
    // the scores it is given.
    const context = await browser.newContext();
    await context.addInitScript(() => {
      window.alerts = [];
      window.Notification = class {
        static permission = 'granted';
        static requestPermission() { return Promise.resolve('granted'); }
        constructor(title, options) { window.alerts.push(options.body); }
      };
      localStorage.setItem('goalAlerts', 'on');
      // Game lines marked republished, as the page receives them.
      window.republished = 0;
      const Original = window.EventSource;
      window.EventSource = class extends Original {
        constructor(...args) {
          super(...args);
          this.addEventListener('game', (event) => { if (JSON.parse(event.data).republished) window.republished += 1; });
        }
      };
    });
    const board = await context.newPage();
    await board.goto(`${api}/#/`);
    const card = board.locator('.card[data-game="7471"]');
    await card.locator('.score', { hasText: '3' }).waitFor({ timeout: 30_000 });

    // The projector is replaced by one that rebuilds the store from the start of the log: the
    // scoreboard gets the match's lines again, marked republished, and ends where it was.
    projector.kill('SIGKILL');
    role('projector', ['--rebuild']);
    await until('republished lines on the scoreboard', () => board.evaluate(() => window.republished > 0), 90_000);
    await finished(api, 7471);
    await card.locator('.score', { hasText: '3' }).waitFor({ timeout: 30_000 });

    // A goal that is news alerts, as ever; and it comes after every republished line (one
    // stream, in order), so no alert before it was for an old goal.
    assert.equal((await admin(producer, 'games/15986?speed=300')).status, 202);
    await until('an alert for the new match\'s first goal', () => board.evaluate(() => window.alerts.length > 0), 120_000);
    const alerts = await board.evaluate(() => window.alerts);
    assert.ok(alerts.every((text) => text.includes('Girona')), `only the new match's goals alerted: ${alerts.join('; ')}`);
    await context.close();
  } finally {
    processes.splice(0).forEach((child) => child.kill('SIGKILL'));
    deleteKeys(unique);
  }
});
