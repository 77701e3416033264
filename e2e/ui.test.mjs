// The web UI in headless Debian Chromium, against a real `livescore up` (in-process engines):
// the admin panel starts 7457 at maximum speed; the match centre, open from before the game existed, follows it to
// Orlando Pride 3-4 North Carolina Courage with seven goals and the own goal marked; the
// scoreboard shows it finished. Once over SSE, once over WebSocket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, startUp } from './support.mjs';

const token = 'e2e-admin-token';
let browser;
const servers = [];

// A fresh `livescore up` per test: the match centre must open before the game exists. (Sharing
// one server, the second test's centre showed the first run's FT 3-4 until the new run's
// snapshot arrived, and its wait for FT passed on that stale state.)
async function startServer() {
  const { base, child } = await startUp(token);
  servers.push(child);
  return base;
}

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  servers.forEach((server) => server.kill('SIGTERM'));
});

for (const transport of ['sse', 'ws']) {
  test(`a replay started in the admin panel is followed live over ${transport}`, { timeout: 120_000 }, async () => {
    const base = await startServer();
    const before404 = await fetch(`${base}/games/7457`);
    assert.equal(before404.status, 404, 'the game does not exist before the replay starts');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript((t) => localStorage.setItem('transport', t), transport);
    const centre = await context.newPage();
    await centre.goto(`${base}/#/game/7457`);

    // The admin panel asks for the token once, then starts the game at maximum speed.
    const admin = await context.newPage();
    await admin.goto(`${base}/#/admin`);
    await admin.fill('input[name=token]', token);
    await admin.click('button:has-text("Continue")');
    const row = admin.locator('[data-catalog="7457"]');
    await row.waitFor();
    await row.locator('select').selectOption('max');
    await row.locator('button[data-start]').click();
    await admin.locator('[data-replay="7457"]').waitFor();
    assert.equal(await admin.locator('.error').count(), 0, 'no error from the server');

    // The match centre, open since before the replay, follows it to the final whistle.
    await centre.locator('.match-head .status', { hasText: 'FT' }).waitFor({ timeout: 90_000 });
    assert.equal(await centre.locator('#score').textContent(), '3 - 4');
    const goals = centre.locator('.timeline li.is-goal');
    assert.equal(await goals.count(), 7, 'seven goals');
    assert.equal(await centre.locator('.timeline li.is-goal .tag', { hasText: 'own goal' }).count(), 1);
    const ids = await centre.locator('.timeline li').evaluateAll((items) => items.map((li) => li.dataset.incident));
    assert.equal(new Set(ids).size, ids.length, 'no incident twice');
    // The last updates may render a frame after the final whistle: wait for them (deadline).
    await centre.locator('.stat').nth(7).waitFor({ timeout: 10_000 });
    await centre.locator('.momentum svg rect').nth(80).waitFor({ state: 'attached', timeout: 10_000 });
    assert.equal(await centre.locator('#badge').textContent(), 'Live');
    // The scorers under the score, the shot map (35 shots, 6 of them goals: the seventh goal is
    // an own goal), the xG timeline and both starting XIs on the pitch.
    assert.equal(await centre.locator('.match-head .scorers li').count(), 7);
    assert.equal(await centre.locator('.match-head .scorers li', { hasText: '(OG)' }).count(), 1);
    await centre.locator('.shotmap circle.shot').nth(34).waitFor({ state: 'attached', timeout: 10_000 });
    assert.equal(await centre.locator('.shotmap circle.shot').count(), 35);
    assert.equal(await centre.locator('.shotmap circle.shot.goal').count(), 6);
    assert.equal(await centre.locator('.xg circle.xg-goal').count(), 6);
    assert.equal(await centre.locator('.formation g.player').count(), 22);
    // Players go by the names fans know (the lineups' nicknames), not the events' full names.
    assert.equal(await centre.locator('.match-head .scorers li', { hasText: 'Debinha' }).count(), 1);
    assert.equal(await centre.locator('.match-head .scorers li', { hasText: 'Débora' }).count(), 0);
    assert.equal(await centre.locator('.formation g.player text.name', { hasText: 'Marta' }).count(), 1);
    assert.equal(await centre.locator('.formation g.player text.name', { hasText: 'Silva' }).count(), 0);
    assert.equal(await centre.locator('#transport').inputValue(), transport);

    // The scoreboard shows it finished.
    const board = await context.newPage();
    await board.goto(`${base}/#/`);
    const card = board.locator('.card[data-game="7457"]');
    await card.locator('.status', { hasText: 'FT' }).waitFor();
    const rows = await card.locator(".row").allInnerTexts();
    assert.deepEqual(rows.map((r) => r.replace(/\s+/g, ' ').trim()),
      ['Orlando Pride 3', 'North Carolina Courage 4']);
    // Filtered by competition, and pinned as a favourite, which the browser remembers.
    const competitions = await board.locator('select[data-competition] option').allInnerTexts();
    assert.ok(competitions.includes('NWSL'), competitions.join(', '));
    await board.locator('select[data-competition]').selectOption('NWSL');
    await board.locator('.fav[data-fav="7457"]').click();
    await board.reload();
    assert.equal(await board.locator('.fav[data-fav="7457"]').getAttribute('aria-pressed'), 'true');
    assert.equal(await board.locator('select[data-competition]').inputValue(), 'NWSL');
    await context.close();
  });
}

test('the match clock ticks between events at the replay\'s speed', { timeout: 60_000 }, async () => {
  const base = await startServer();
  const started = await fetch(`${base}/games/7471?speed=60`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(started.status, 202);
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto(`${base}/#/game/7471`);
  // Seconds appear once a clock update has come, and move on without any new event.
  const clock = page.locator('#clock');
  await page.waitForFunction(() => /^\d+(\+\d+)?:\d\d$/.test(document.getElementById('clock')?.textContent ?? ''), null, { timeout: 30_000 });
  const first = await clock.textContent();
  await page.waitForFunction((before) => document.getElementById('clock')?.textContent !== before, first, { timeout: 10_000 });
  await context.close();
});

test('goal alerts, once allowed, tell of each goal through the Notifications API', { timeout: 90_000 }, async () => {
  const base = await startServer();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['notifications'], { origin: base });
  // Record what the page notifies (headless Chromium shows nothing on screen).
  await context.addInitScript(() => {
    const Real = window.Notification;
    window.alerts = [];
    window.Notification = class extends Real {
      constructor(title, options) { super(title, options); window.alerts.push(options?.body ?? ''); }
    };
  });
  const board = await context.newPage();
  await board.goto(`${base}/#/`);
  await board.locator('button[data-alerts]').click();
  await board.locator('button[data-alerts][aria-pressed="true"]').waitFor();
  // At 300x, 7457's goals (three minutes apart at the closest) are 0.6 s apart or more: each
  // reaches the scoreboard in a list update of its own. (At full speed several share one.)
  const started = await fetch(`${base}/games/7457?speed=300`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(started.status, 202);
  await board.locator('.card[data-game="7457"] .status', { hasText: 'FT' }).waitFor({ timeout: 60_000 });
  const alerts = await board.evaluate(() => window.alerts);
  const scores = ['0, North Carolina Courage 1', '1, North Carolina Courage 1', '1, North Carolina Courage 2',
    '1, North Carolina Courage 3', '2, North Carolina Courage 3', '3, North Carolina Courage 3',
    '3, North Carolina Courage 4'];
  assert.deepEqual(alerts, scores.map((score) => `Goal! Orlando Pride ${score}`), 'one alert per goal, in order');
  await context.close();
});
