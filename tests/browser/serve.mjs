// The browser test of `bgflow serve`, run by tests/serve/browser.rs: Debian's chromium,
// driven by playwright-core (which downloads no browser), against a real server and a
// real run. Environment: BGFLOW_URL (the URL serve printed, with its token), BGFLOW_RUN
// (the run id), BGFLOW_MARKER (the file that lets the first step end), BGFLOW_SHOT (where
// to save the screenshot of the run page), BGFLOW_CHROMIUM (default /usr/bin/chromium),
// BGFLOW_PROFILE (a fresh user-data folder). Prints one line per stage; exits 1 on failure.
import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env('BGFLOW_URL');
const run = env('BGFLOW_RUN');
const marker = env('BGFLOW_MARKER');
const shot = env('BGFLOW_SHOT');
const T = 30000;

const context = await chromium.launchPersistentContext(env('BGFLOW_PROFILE'), {
  executablePath: process.env.BGFLOW_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1100, height: 760 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const step = (s) => console.log(`browser: ${s}`);
let failed = false;
try {
  const page = context.pages()[0] || await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));

  // The runs list: the printed URL sets the cookie and lands on /.
  await page.goto(url);
  const row = page.locator(`#run-${run}`);
  await row.waitFor({ timeout: T });
  step(`runs list shows ${run} ${await row.getAttribute('data-state')}`);

  // The running run, opened from the list.
  await page.click(`a[href="/runs/${run}"]`);
  await page.waitForSelector('g.node[data-step="fetch"][data-state="running"]', { timeout: T });
  step('run page: fetch is running');
  // No reload from here on: the mark stays on the window only while it is the same page.
  await page.evaluate(() => { window.bgflowSamePage = true; });
  await page.waitForSelector('#conn.on', { timeout: T });

  // The first step ends: its box turns green live.
  writeFileSync(marker, '');
  await page.waitForSelector('g.node[data-step="fetch"][data-state="succeeded"]', { timeout: T });
  // The graph is drawn again as events arrive (the next steps start right after), so the
  // box found above may already be replaced (a detached box has no computed fill): the
  // fill is read from the box on the page until it is green, or the wait fails.
  const green = 'rgb(230, 245, 236)';
  const fillNow = () => page.evaluate(() => {
    const r = document.querySelector('g.node[data-step="fetch"] rect');
    return r ? getComputedStyle(r).fill : '(no box)';
  });
  try {
    await page.waitForFunction((want) => {
      const r = document.querySelector('g.node[data-step="fetch"] rect');
      return r && getComputedStyle(r).fill === want;
    }, green, { timeout: T });
  } catch (e) {
    throw new Error(`fetch's box is not green: ${await fillNow()}`);
  }
  step(`fetch turned green live (${await fillNow()})`);
  await page.waitForSelector('g.node[data-step="build"][data-state="running"]', { timeout: T });
  await page.waitForSelector('g.node[data-step="lint"][data-state="succeeded"]', { timeout: T });
  await page.waitForFunction(() => {
    const t = document.querySelector('g.node[data-step="build"] text.sub');
    return t && /running [1-9]/.test(t.textContent);
  }, null, { timeout: T });
  // The log of the step that was running when the page was drawn, followed live.
  await page.waitForFunction(() => /fetched/.test(document.getElementById('logtext').textContent),
    null, { timeout: T });
  if (!(await page.evaluate(() => window.bgflowSamePage))) throw new Error('the page was reloaded');
  step('build is running with progress; the log followed live; no reload');

  await page.screenshot({ path: shot, fullPage: true });
  step(`screenshot: ${shot}`);

  // Stop: the run ends cancelled.
  await page.click('button[data-stop]');
  await page.waitForSelector('#run-state[data-state="cancelled"]', { timeout: 60000 });
  step('stopped: the run is cancelled');
  const foreign = requests.filter((r) => !r.startsWith(new URL(url).origin));
  if (foreign.length) throw new Error(`requests outside the server: ${foreign.join(', ')}`);
} catch (e) {
  failed = true;
  console.log(`browser: FAILED: ${e && e.stack ? e.stack : e}`);
} finally {
  await context.close();
}
process.exit(failed ? 1 : 0);
