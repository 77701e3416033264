// Screenshots of the web UI for docs/screenshots/: the scoreboard, a match centre and the admin
// panel, at desktop and phone width. Needs a running `livescore up` (BASE_URL, default
// http://127.0.0.1:8080) with finished replays, and ADMIN_TOKEN for the admin panel.
import { mkdirSync } from 'node:fs';
import { launchChromium } from './support.mjs';

const base = process.env.BASE_URL ?? 'http://127.0.0.1:8080';
const token = process.env.ADMIN_TOKEN ?? '';
const game = process.env.GAME ?? '7457';
const out = new URL('../docs/screenshots/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });

const browser = await launchChromium();
for (const [width, height, suffix] of [[1280, 900, 'desktop'], [390, 844, 'phone']]) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  await context.addInitScript((t) => sessionStorage.setItem('adminToken', t), token);
  const page = await context.newPage();
  await page.goto(`${base}/#/`);
  await page.locator('.card').first().waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}scoreboard-${suffix}.png`, fullPage: true });
  await page.goto(`${base}/#/game/${game}`);
  await page.locator('.timeline li').first().waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}match-${suffix}.png`, fullPage: true });
  await page.goto(`${base}/#/admin`);
  await page.locator('[data-catalog]').first().waitFor();
  await page.screenshot({ path: `${out}admin-${suffix}.png`, fullPage: true });
  await context.close();
}
await browser.close();
console.log(`screenshots written to ${out}`);
