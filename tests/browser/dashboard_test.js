// The dashboard in a real browser (run by run_browser_test.py, which starts the cluster):
// the page loads without console errors; a job submitted while the page is open appears
// and turns COMPLETED without a reload; its page shows the log and a training curve; GPU
// bars and holders show. Screenshots go to $WSLQ_ARTIFACTS. Every wait has a timeout.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require(path.join(process.env.WSLQ_NODE_MODULES, 'playwright-core'));

const URL = process.env.WSLQ_URL;
const OUT = process.env.WSLQ_ARTIFACTS;

function wslq(...args) {
  return execFileSync(process.env.WSLQ_CLI, args, {
    env: { ...process.env, WSLQ_SCHEDULER: process.env.WSLQ_SCHEDULER },
    cwd: process.env.WSLQ_WORKDIR,
    encoding: 'utf8',
    timeout: 30000,
  }).trim();
}

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? 'ok' : 'FAIL'}: ${what}`);
  if (!cond) failures++;
  return cond;
}

// A job that logs and writes metric lines for about 4 s.
const TRAIN = 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "epoch $i: training"; ' +
  'echo "{\\"step\\":$((i*100)),\\"loss\\":$(awk "BEGIN{print 2.3/$i}"),' +
  '\\"test_acc\\":$(awk "BEGIN{print 1-0.9/$i}"),\\"samples_per_s\\":$((1200+i*7))}" ' +
  '>> "$WSLQ_METRICS"; sleep 0.4; done; echo done';

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wslq-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.WSLQ_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-quic',
      '--disable-sync'],
    viewport: { width: 1360, height: 1000 },
    timeout: 60000,
  });
  const errors = [];
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.setDefaultTimeout(30000);
  let reloads = 0;
  page.on('load', () => { reloads++; });

  try {
    await page.goto(URL);
    // Not signed in: the page asks for a token, and takes the one `wslq token` printed.
    await page.waitForSelector('#token-dialog[open]');
    check(true, 'the page asks to sign in');
    await page.fill('#token-input', process.env.WSLQ_TEST_TOKEN);
    await page.click('#token-form button[type=submit]');
    await page.waitForFunction((u) => document.querySelector('#who').textContent.startsWith(u),
      process.env.WSLQ_TEST_USER);
    check(true, `signed in as ${await page.textContent('#who')}`);
    // the 401s of the loads before signing in are the browser's console lines; from here on
    // there must be none
    const before = errors.splice(0).filter((e) => !e.includes('401'));
    check(before.length === 0, `no console errors before signing in but the 401s: ${before.join(' | ')}`);
    await page.waitForSelector('#conn.live');
    check(true, 'page loaded and the event stream is live');
    await page.waitForSelector('.node[data-node="pc1"] .gpu');
    await page.waitForSelector('.node[data-node="pc2"] .gpu');
    await page.waitForSelector('.node[data-node="pc2"] .owner');
    const ownerLine = await page.textContent('.node[data-node="pc2"] .owner');
    check(ownerLine.startsWith('owner away, policy yield: no input for'), `pc2's owner shown: ${ownerLine}`);
    check(await page.locator('.node[data-node="pc1"] .owner').count() === 0, 'pc1 has no owner line');
    const gpuRows = await page.locator('.gpu').count();
    check(gpuRows >= 2, `GPU rows drawn (${gpuRows})`);
    const memBars = await page.locator('.node[data-node="pc1"] .bar.mem').count();
    check(memBars > 0 || !process.env.WSLQ_NVML_FAKE, `memory bars on pc1 (${memBars})`);

    // Show every state, so the job stays in the list when it ends.
    await page.selectOption('#filters select[name=state]', '');
    await page.click('#filters button[type=submit]');

    // A job holding pc2's GPU for a while, so a holder shows next to a GPU bar.
    const holder = Number(wslq('submit', '--parsable', '--gpus', '1', '--name', 'holder',
      '--', 'sleep', '60'));
    await page.waitForSelector(`.gpu .holder a[href="#/jobs/${holder}"]`);
    check(true, `GPU holder job ${holder} shown next to its GPU`);

    const id = Number(wslq('submit', '--parsable', '--gpus', '1', '--name', 'mnist-demo',
      '--wrap', TRAIN));
    check(id > 0, `submitted job ${id}`);
    const row = `#jobs tr[data-id="${id}"]`;
    await page.waitForSelector(row);
    check(true, `job ${id} appeared without a reload`);
    await page.waitForSelector(`${row}[data-state="RUNNING"]`);
    await page.screenshot({ path: path.join(OUT, 'cluster-running.png'), fullPage: true });
    await page.waitForSelector(`${row}[data-state="COMPLETED"]`, { timeout: 60000 });
    check(true, `job ${id} turned COMPLETED without a reload`);
    check(reloads === 1, `no reload happened (loads: ${reloads})`);
    await page.screenshot({ path: path.join(OUT, 'cluster.png'), fullPage: true });

    // The job page: spec, timeline, log, curves.
    await page.click(`${row} td a`);
    await page.waitForSelector('#view-job:not([hidden])');
    await page.waitForFunction(() => document.getElementById('log').textContent.includes('done'));
    check(true, 'job page shows the log');
    await page.waitForSelector('.chart[data-chart="Loss"] polyline');
    await page.waitForSelector('.chart[data-chart="Accuracy"] polyline');
    await page.waitForSelector('.chart[data-chart="Samples/s"] polyline');
    const pts = await page.locator('.chart[data-chart="Loss"] polyline').first()
      .getAttribute('points');
    check(pts.trim().split(' ').length === 10, `loss curve has 10 points (${pts.split(' ').length})`);
    const events = await page.locator('#job-events li').count();
    check(events >= 3, `timeline shows the state changes (${events})`);
    await page.screenshot({ path: path.join(OUT, 'job.png'), fullPage: true });

    // History: ended jobs, newest first, with the state filter preset.
    await page.click('.top nav a[data-view="history"]');
    await page.waitForSelector(`#jobs tr[data-id="${id}"][data-state="COMPLETED"]`);
    const histRunning = await page.locator('#jobs tr[data-state="RUNNING"]').count();
    check(histRunning === 0, 'history lists ended jobs only');
    await page.screenshot({ path: path.join(OUT, 'history.png'), fullPage: true });

    // A running job's log follows live: open the holder's page, then it gets cancelled.
    await page.goto(`${URL}#/jobs/${holder}`);
    await page.waitForSelector('#job-title .badge.RUNNING');
    wslq('cancel', String(holder));
    await page.waitForSelector('#job-title .badge.CANCELLED');
    check(true, 'an open job page follows the job to CANCELLED');
  } catch (e) {
    check(false, `browser step failed: ${e.message.split('\n')[0]}`);
    await page.screenshot({ path: path.join(OUT, 'failure.png'), fullPage: true }).catch(() => {});
  }
  check(errors.length === 0, `no console errors${errors.length ? `: ${errors.join(' | ')}` : ''}`);
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
  console.log(`${failures ? 'FAILED' : 'passed'}; screenshots in ${OUT}`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
