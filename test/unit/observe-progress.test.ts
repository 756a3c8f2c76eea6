/** Progress counts, the terminal display (cli-progress) and the observability options. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { describe, it } from 'node:test';
import cliProgress from 'cli-progress';
import { UsageError } from 'volley';
import type { VolleyEvent } from '../../sdk/events.js';
import { JobCounts } from '../../sdk/observe/counts.js';
import { resolveObserveOptions } from '../../sdk/observe/options.js';
import { AUTO_DELAY_MS, TerminalProgress, watchProgress } from '../../sdk/observe/progress.js';

function submit(c: JobCounts, fn: string, n: number, t = 0) {
  for (let i = 0; i < n; i++) c.onEvent({ type: 'submitted', time: t, taskId: `${fn}-${i}`, fn });
}
function dispatch(c: JobCounts, fn: string, i: number, attempt = 1) {
  c.onEvent({ type: 'dispatched', time: 1, taskId: `${fn}-${i}`, fn, attempt, memoryMB: 1024, deps: [], storedInputs: 0, storedInputBytes: 0 });
}
function finish(c: JobCounts, fn: string, i: number, outcome: 'ok' | 'failed' | 'dependency', time = 2) {
  const e: VolleyEvent = { type: 'finished', time, taskId: `${fn}-${i}`, fn, attempt: 1, outcome, memoryMB: 1024, submittedAt: 0, dispatchedAt: outcome === 'dependency' ? undefined : 1, deps: [] };
  c.onEvent(e);
}

function retry(c: JobCounts, fn: string, i: number, attempt: number) {
  c.onEvent({
    type: 'retrying',
    time: 2,
    taskId: `${fn}-${i}`,
    fn,
    attempt,
    outcome: 'failed',
    reason: 'retry',
    delayMs: 100,
    memoryMB: 1024,
    submittedAt: 0,
    dispatchedAt: 1,
    deps: [],
    error: { name: 'E', message: 'x' },
  });
}

/** A stream that says it is a terminal and keeps what is written to it. */
function fakeTty() {
  let out = '';
  const s = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  s.isTTY = true;
  s.columns = 160;
  s.text = () => stripVTControlCharacters(out);
  return s;
}

describe('progress', () => {
  it('counts tasks by state, overall and per function', () => {
    const c = new JobCounts();
    submit(c, 'a', 3);
    submit(c, 'b', 2);
    dispatch(c, 'a', 0);
    dispatch(c, 'a', 1);
    retry(c, 'a', 1, 1); // its first run failed: it waits for its next
    assert.deepEqual([c.all.running, c.all.pending, c.retries], [1, 4, 1]);
    dispatch(c, 'a', 1, 2); // a second run is a retry, not another task
    finish(c, 'a', 0, 'ok');
    finish(c, 'a', 1, 'failed');
    finish(c, 'b', 0, 'dependency');
    const p = c.snapshot();
    assert.deepEqual(
      { total: p.total, done: p.done, failed: p.failed, running: p.running, pending: p.pending, retries: p.retries },
      { total: 5, done: 1, failed: 2, running: 0, pending: 2, retries: 1 },
    );
    assert.deepEqual(p.byFunction, { a: { total: 3, done: 1, failed: 1, running: 0, pending: 1 }, b: { total: 2, done: 0, failed: 1, running: 0, pending: 1 } });
    assert.equal(c.idle, false);
    finish(c, 'a', 2, 'dependency');
    finish(c, 'b', 1, 'dependency');
    assert.equal(c.idle, true);
    // a-0's stored result was lost: it is pending again until its rebuild finishes.
    c.onEvent({ type: 'rebuilding', time: 3, taskId: 'a-0', fn: 'a', rebuild: 1 });
    assert.deepEqual([c.all.done, c.all.pending, c.rebuilds, c.idle], [0, 1, 1, false]);
    dispatch(c, 'a', 0, 2);
    finish(c, 'a', 0, 'ok');
    const q = c.snapshot();
    assert.deepEqual([q.done, q.failed, q.running, q.pending, q.retries, q.rebuilds, c.idle], [1, 4, 0, 0, 1, 1, true]);
  });

  it('watchProgress calls back while counts change, and once more at the end', () => {
    const c = new JobCounts();
    const seen: number[] = [];
    const stop = watchProgress(c, (p) => seen.push(p.done), 60_000);
    submit(c, 'a', 2);
    dispatch(c, 'a', 0);
    finish(c, 'a', 0, 'ok');
    stop();
    assert.deepEqual(seen, [1]);
  });

  it("'auto' draws nothing for a job that ends within a moment, and bars with counts for one that runs on", () => {
    const c = new JobCounts();
    const tty = fakeTty();
    const bar = new TerminalProgress(c, cliProgress, 'auto', tty, 60_000);
    try {
      submit(c, 'square', 6);
      submit(c, 'sum', 4);
      bar.tick(0);
      bar.tick(AUTO_DELAY_MS / 2);
      assert.equal(tty.text(), '', 'nothing before the delay');
      for (let i = 0; i < 6; i++) dispatch(c, 'square', i);
      for (let i = 0; i < 5; i++) finish(c, 'square', i, 'ok');
      // square-5 fails twice before its last run fails too.
      retry(c, 'square', 5, 1);
      dispatch(c, 'square', 5, 2);
      retry(c, 'square', 5, 2);
      dispatch(c, 'square', 5, 3);
      finish(c, 'square', 5, 'failed');
      bar.tick(AUTO_DELAY_MS + 1);
      const text = tty.text();
      assert.match(text, /all tasks .*6\/10 \| 5 done, 0 running, 4 pending, 1 failed, 2 retried \|/);
      assert.match(text, /square .*6\/6 \| 5 done, 0 running, 0 pending, 1 failed/);
      assert.match(text, /sum .*0\/4 \| 0 done, 0 running, 4 pending, 0 failed/);
      for (let i = 0; i < 4; i++) finish(c, 'sum', i, 'dependency');
      bar.tick(AUTO_DELAY_MS + 2);
      assert.match(tty.text(), /all tasks .*10\/10 \| 5 done, 0 running, 0 pending, 5 failed/);
    } finally {
      bar.close();
    }
  });
});

describe('observability options', () => {
  const none = {};
  it("progress 'auto' is on for a TTY only; VOLLEY_PROGRESS and the option override; a function is the programmatic form", () => {
    assert.equal(resolveObserveOptions(none, 'local', {}, true).progress, 'auto');
    assert.equal(resolveObserveOptions(none, 'local', {}, false).progress, 'off');
    assert.equal(resolveObserveOptions(none, 'local', { VOLLEY_PROGRESS: '1' }, false).progress, 'on');
    assert.equal(resolveObserveOptions(none, 'local', { VOLLEY_PROGRESS: '0' }, true).progress, 'off');
    assert.equal(resolveObserveOptions({ progress: false }, 'local', { VOLLEY_PROGRESS: '1' }, true).progress, 'off');
    const fn = () => undefined;
    const r = resolveObserveOptions({ progress: fn }, 'local', {}, true);
    assert.equal(r.onProgress, fn);
    assert.equal(r.progress, 'off');
    assert.throws(
      () => resolveObserveOptions(none, 'local', { VOLLEY_PROGRESS: 'maybe' }, true),
      (e: unknown) => e instanceof UsageError && /VOLLEY_PROGRESS must be auto, 1 or 0/.test(e.message),
    );
  });

  it('everything is off by default on a non-TTY with the embedded runtime, so nothing is loaded', () => {
    const r = resolveObserveOptions(none, 'local', {}, false);
    assert.deepEqual(r, { progress: 'off', onProgress: undefined, timeline: undefined, dashboard: undefined, cost: undefined, summary: false, any: false });
  });

  it('timeline, dashboard, summary and cost from options and environment', () => {
    assert.deepEqual(resolveObserveOptions(none, 'local', { VOLLEY_TIMELINE: '1' }, false).timeline, { maxTasks: 50_000 });
    assert.deepEqual(resolveObserveOptions(none, 'local', { VOLLEY_TIMELINE: 'out/t.json' }, false).timeline, { path: 'out/t.json', maxTasks: 50_000 });
    assert.deepEqual(resolveObserveOptions({ timeline: { maxTasks: 10 } }, 'local', {}, false).timeline, { path: undefined, maxTasks: 10 });
    assert.throws(() => resolveObserveOptions({ timeline: { maxTasks: 0 } }, 'local', {}, false), /maxTasks.*integer from 1/);
    assert.throws(() => resolveObserveOptions({ timeline: { size: 3 } as never }, 'local', {}, false), /unknown option\(s\) "size"; valid options are: path, maxTasks/);
    const d = resolveObserveOptions(none, 'local', { VOLLEY_DASHBOARD: '1' }, false);
    assert.deepEqual(d.dashboard, { host: '127.0.0.1', port: 0 });
    assert.ok(d.cost, 'the dashboard shows cost, so it is counted');
    assert.throws(() => resolveObserveOptions({ dashboard: { port: 70000 } }, 'local', {}, false), /port.*0 to 65535/);
    assert.equal(resolveObserveOptions(none, 'aws', {}, false).summary, true, 'a job on AWS prints its summary (with its cost)');
    assert.equal(resolveObserveOptions(none, 'emulator', {}, false).summary, false);
    assert.ok(resolveObserveOptions(none, 'emulator', {}, false).cost, 'cost is counted on the AWS-like targets');
    assert.equal(resolveObserveOptions(none, 'local', { VOLLEY_SUMMARY: '0' }, true).summary, false);
    assert.deepEqual(resolveObserveOptions({ cost: { architecture: 'x86_64', prices: { s3TransferOutPerGB: 0 } } }, 'local', {}, false).cost, {
      architecture: 'x86_64',
      prices: { s3TransferOutPerGB: 0 },
      asked: true,
    });
    assert.throws(() => resolveObserveOptions({ cost: { prices: { lambdaRequest: -1 } } }, 'local', {}, false), /lambdaRequest.*price >= 0/);
    assert.throws(() => resolveObserveOptions({ cost: { prices: { lambdaGbSeconds: 1 } as never } }, 'local', {}, false), /unknown option\(s\) "lambdaGbSeconds"/);
  });
});
