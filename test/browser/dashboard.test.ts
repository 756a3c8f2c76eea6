/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a
 * running job: what a person sees. The counts reach the total while the job runs, a failure's
 * remote stack appears, and the page loads nothing but its own files (every request that
 * would leave 127.0.0.1 is refused and recorded).
 *
 * Outside CI the tier skips when chromium is not installed; in CI (CI=true) .ci/run installs
 * it and the tier must run. VOLLEY_UPDATE_SCREENSHOT=1 writes the screenshot to docs/images/.
 */
// biome-ignore-all lint/performance/useDomNodeTextContent: these are playwright locators; innerText is the text a person sees
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { Runtime } from 'volley';
import { failOn } from '../fixtures/failure-tasks.js';
import { failIfNegative, nap } from '../fixtures/tasks.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const SCREENSHOT = join(root, 'docs/images/dashboard.png');

function findChromium(): string | undefined {
  const given = process.env.CHROMIUM_PATH;
  if (given) return given;
  for (const name of ['chromium', 'chromium-browser']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

const chromiumPath = findChromium();
const inCI = process.env.CI === 'true';
if (!chromiumPath && inCI) throw new Error('CI=true but chromium is not installed: .ci/run installs it (apt-get install chromium)');
const skip = chromiumPath ? false : 'chromium is not installed (apt-get install chromium, or set CHROMIUM_PATH)';

describe('the dashboard in a browser', { skip }, () => {
  let browser: Browser;
  const dir = mkdtempSync(join(tmpdir(), 'volley-browser-'));

  before(async () => {
    const { chromium } = await import('playwright-core');
    // No name resolves: a page that tried a CDN would fail to load it.
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--disable-gpu'] });
  });
  after(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows a running job live: counts reach the total, the failure with its stack, retried runs with theirs, cost; nothing loads from the network', async () => {
    const rt = await new Runtime({ dashboard: true, timeline: true, summary: false, retryBaseDelayMs: 5, local: { maxWorkers: 2 } }).ready();
    try {
      const url = await rt.dashboardUrl();
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const elsewhere: string[] = [];
      await page.route('**/*', (route) => {
        const u = new URL(route.request().url());
        if (u.hostname === '127.0.0.1') return route.continue();
        elsewhere.push(u.href);
        return route.abort();
      });
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      await page.goto(url);
      await page.getByTestId('status').filter({ hasText: 'running' }).waitFor();
      assert.match(await page.getByTestId('job').innerText(), new RegExp(`job ${rt.jobId} on local`));

      // The job starts once the page is watching: 120 naps of 20 ms on two workers, one failure,
      // and a task that fails twice before it succeeds.
      const naps = Array.from({ length: 120 }, (_, i) => rt.remote(nap, 20, `n${i}`));
      const bad = rt.remote(failIfNegative, -7);
      const flaky = rt.remote(failOn.options({ retryExceptions: true }), [1, 2], 'throw');
      const text = (id: string) => page.getByTestId(id).innerText();
      // Part-way: some finished, not all (the page updates while the job runs).
      // Runs in the page (its policy forbids evaluating strings, so these are functions).
      await page.waitForFunction(() => {
        const { document } = globalThis as unknown as { document: { querySelector(s: string): { textContent: string } } };
        const n = (id: string) => Number(document.querySelector(`[data-testid="${id}"]`).textContent.replace(/,/g, ''));
        return n('finished') > 0 && n('finished') < n('total');
      });
      await rt.get(naps);
      await rt.get(bad).catch(() => undefined);
      assert.equal(await rt.get(flaky), 3);
      await page.getByTestId('finished').filter({ hasText: /^122$/ }).waitFor();
      assert.equal(await text('total'), '122');
      assert.equal(await text('done'), '121');
      assert.equal(await text('failed'), '1');
      assert.equal(await text('running'), '0');
      assert.equal(await text('pending'), '0');
      assert.equal(await text('retries'), '2');

      const fns = page.getByTestId('functions');
      assert.match(await fns.locator('tr[data-fn="nap"]').innerText(), /^nap\s+120\s+120\s+0\s+0\s+0/);
      assert.match(await fns.locator('tr[data-fn="failIfNegative"]').innerText(), /^failIfNegative\s+1\s+0\s+0\s+0\s+1/);

      // Each failed run of flaky is listed with its own remote stack, as retried.
      const retried = page.getByTestId('failures').locator('li.retried');
      assert.equal(await retried.count(), 2);
      for (const k of [1, 2]) {
        const run = retried.filter({ hasText: `failed on attempt ${k}` });
        assert.match(await run.locator('.who').innerText(), new RegExp(`^failed on thread-\\d+, attempt ${k}, at .* — retried after \\d+ ms$`));
        assert.match(await run.locator('pre.stack').innerText(), new RegExp(`^TransientError: failed on attempt ${k}\\n\\s+at failOn \\(.*failure-tasks\\.js:\\d+:\\d+\\)`));
      }

      const failure = page.getByTestId('failures').locator('li:not(.retried)').first();
      assert.match(await failure.innerText(), /failIfNegative \(failIfNegative-\w+\): ValidationFailure: expected a non-negative number, got -7/);
      const stack = await failure.locator('pre.stack').innerText();
      assert.match(stack, /^ValidationFailure: expected a non-negative number, got -7\n\s+at failIfNegative \(.*tasks\.js:\d+:\d+\)/);

      assert.match(await text('cost'), /Estimate of this job on Lambda; us-east-1 prices as of \d{4}-\d{2}-\d{2}/);
      assert.match(await text('cost'), /124 requests/, 'every run is an invocation');
      assert.match(await page.locator('#legend').innerText(), /nap/);
      assert.ok(await page.locator('#timeline-link').isVisible(), 'the timeline can be downloaded');

      const shot = join(dir, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.deepEqual([...readFileSync(shot).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
      if (process.env.VOLLEY_UPDATE_SCREENSHOT === '1') copyFileSync(shot, SCREENSHOT);

      await rt.shutdown();
      await page.getByTestId('status').filter({ hasText: 'ended' }).waitFor();
      assert.deepEqual(elsewhere, [], 'the page asked for nothing beyond 127.0.0.1');
      assert.deepEqual(pageErrors, []);
    } finally {
      await rt.shutdown();
    }
  });

  it('the screenshot in the docs exists', () => {
    assert.ok(existsSync(SCREENSHOT), `${SCREENSHOT} is missing: run the browser tier with VOLLEY_UPDATE_SCREENSHOT=1`);
  });
});
