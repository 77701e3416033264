// axe-core in headless Debian Chromium, on the scoreboard, the match centre (live, and showing
// a past minute with its slider) and the admin panel, in light and in dark: no serious or
// critical violation of WCAG 2.x A and AA (and axe's best practices).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AxeBuilder } from '@axe-core/playwright';
import { launchChromium, startUp, until } from './support.mjs';

const token = 'e2e-accessibility-token';
let browser;
let server;

before(async () => {
  browser = await launchChromium();
  server = await startUp(token);
  const started = await fetch(`${server.base}/games/7471?speed=max`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(started.status, 202);
  await until('the replay finished', async () => {
    const response = await fetch(`${server.base}/games/7471`);
    return response.ok && (await response.json()).replay.status === 'finished';
  }, 60_000);
});
after(async () => {
  await browser?.close();
  server?.child.kill('SIGKILL');
});

// The serious and critical violations on `page`, one line each.
async function violations(page) {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'])
    .analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

for (const colorScheme of ['light', 'dark']) {
  test(`no serious or critical violation, ${colorScheme}`, { timeout: 90_000 }, async () => {
    const context = await browser.newContext({ colorScheme, viewport: { width: 1280, height: 900 } });
    await context.addInitScript((t) => sessionStorage.setItem('adminToken', t), token);
    const page = await context.newPage();
    const found = {};

    await page.goto(`${server.base}/#/`);
    await page.locator('.card[data-game="7471"]').waitFor();
    found.scoreboard = await violations(page);

    await page.goto(`${server.base}/#/game/7471`);
    await page.locator('.timeline li').first().waitFor();
    await page.locator('#minute').waitFor();
    found['match centre'] = await violations(page);
    await page.locator('#minute').evaluate((input) => { input.value = '45'; input.dispatchEvent(new Event('input', { bubbles: true })); });
    await page.locator('#view.in-the-past').waitFor();
    await page.locator('[data-live]').waitFor();
    found['match centre at 45\''] = await violations(page);

    await page.goto(`${server.base}/#/admin`);
    await page.locator('[data-replay="7471"]').waitFor();
    found['admin panel'] = await violations(page);

    await context.close();
    assert.deepEqual(found, { scoreboard: [], 'match centre': [], 'match centre at 45\'': [], 'admin panel': [] });
  });
}
