/**
 * Watching a job on the embedded runtime: task events, the timeline file, progress counts, the
 * cost estimate, the summary at shutdown, and what stays out of the default path.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Progress, Runtime, type TaskFinishedEvent, type TaskRetryingEvent, UsageError, type VolleyEvent } from 'volley';
import type { TraceEvent } from '../../sdk/observe/timeline.js';
import { failOn } from '../fixtures/failure-tasks.js';
import { add, deepSum, failIfNegative, filled, inc, nap } from '../fixtures/tasks.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = mkdtempSync(join(tmpdir(), 'volley-observe-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('observing a job on the embedded runtime', () => {
  const runtimes: Runtime[] = [];
  const start = (o?: ConstructorParameters<typeof Runtime>[0]) => {
    const rt = new Runtime({ summary: false, ...o });
    runtimes.push(rt);
    return rt;
  };
  after(() => Promise.all(runtimes.map((r) => r.shutdown())));

  it("tells listeners each task's submission, dispatch and end, with its worker, timings and outcome", async () => {
    const rt = start({ local: { maxWorkers: 2 } });
    const events: VolleyEvent[] = [];
    const stop = rt.onEvent((e) => events.push(e));
    const ok = rt.remote(inc, 1);
    const bad = rt.remote(failIfNegative, -1);
    const after = rt.remote(inc, bad);
    assert.equal(await rt.get(ok), 2);
    await assert.rejects(rt.get(after));
    stop();
    const of = (id: string) => events.filter((e) => 'taskId' in e && e.taskId === id).map((e) => e.type);
    assert.deepEqual(of(ok.id), ['submitted', 'dispatched', 'finished']);
    assert.deepEqual(of(bad.id), ['submitted', 'dispatched', 'finished']);
    assert.deepEqual(of(after.id), ['submitted', 'finished'], 'a task whose argument failed never runs');
    const fin = (id: string) => events.find((e): e is TaskFinishedEvent => e.type === 'finished' && e.taskId === id)!;
    assert.equal(fin(ok.id).outcome, 'ok');
    assert.match(fin(ok.id).worker!.id, /^thread-\d+$/);
    assert.ok(Number.isFinite(fin(ok.id).startedAt), 'the worker says when it started');
    assert.ok(fin(ok.id).timing!.runMs >= 0);
    assert.deepEqual(fin(ok.id).result, { bytes: fin(ok.id).result!.bytes, stored: false });
    assert.equal(fin(bad.id).outcome, 'failed');
    assert.equal(fin(bad.id).error!.name, 'ValidationFailure');
    assert.match(fin(bad.id).error!.stack!, /failIfNegative/);
    assert.equal(fin(after.id).outcome, 'dependency');
    assert.equal(fin(after.id).dispatchedAt, undefined);
    // After stop(), nothing more arrives.
    const n = events.length;
    await rt.get(rt.remote(inc, 5));
    assert.equal(events.length, n);
  });

  it('says a cancelled task ended cancelled: one finished event, outcome cancelled, never dispatched', async () => {
    const rt = start({ local: { maxWorkers: 1 } });
    const events: VolleyEvent[] = [];
    const stop = rt.onEvent((e) => events.push(e));
    const slow = rt.remote(nap, 60_000, 'slow');
    const waiting = rt.remote(deepSum, slow);
    rt.cancel(waiting);
    await assert.rejects(rt.get(waiting), { code: 'TASK_CANCELLED' });
    rt.cancel(slow, { force: true });
    await assert.rejects(rt.get(slow), { code: 'TASK_CANCELLED' });
    stop();
    const finished = events.filter((e): e is TaskFinishedEvent => e.type === 'finished' && e.taskId === waiting.id);
    assert.equal(finished.length, 1);
    assert.equal(finished[0]!.outcome, 'cancelled');
    assert.equal(finished[0]!.dispatchedAt, undefined);
    assert.equal(events.find((e): e is TaskFinishedEvent => e.type === 'finished' && e.taskId === slow.id)?.outcome, 'cancelled');
  });

  it('shows every run of a task that failed twice and then succeeded: events, counts, timeline slices per worker, billed runs', async () => {
    let last: Progress | undefined;
    const rt = start({ timeline: true, cost: true, progress: (p) => (last = p), retryBaseDelayMs: 5, local: { maxWorkers: 2 } });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    const flaky = rt.remote(failOn.options({ retryExceptions: true }), [1, 2], 'throw');
    const steady = rt.remote(inc, 1);
    assert.equal(await rt.get(flaky), 3, 'its third run succeeded');
    await rt.get(steady);
    const mine = events.filter((e) => 'taskId' in e && e.taskId === flaky.id);
    assert.deepEqual(
      mine.map((e) => e.type),
      ['submitted', 'dispatched', 'retrying', 'dispatched', 'retrying', 'dispatched', 'finished'],
    );
    const retried = mine.filter((e): e is TaskRetryingEvent => e.type === 'retrying');
    for (const [k, e] of retried.entries()) {
      assert.equal(e.attempt, k + 1);
      assert.equal(e.outcome, 'failed');
      assert.equal(e.reason, 'retry');
      assert.ok(e.delayMs! >= 0 && e.delayMs! <= 5 * 2 ** k, `backoff ${e.delayMs}`);
      assert.match(e.worker!.id, /^thread-\d+$/);
      assert.ok(e.timing!.runMs >= 0 && e.dispatchedAt! <= e.time);
      assert.equal(e.error.name, 'TransientError');
      assert.match(e.error.stack!, new RegExp(`^TransientError: failed on attempt ${k + 1}\\n\\s+at failOn `));
    }
    const end = mine.at(-1) as TaskFinishedEvent;
    assert.deepEqual([end.attempt, end.outcome, end.error], [3, 'ok', undefined]);
    assert.ok(end.dispatchedAt! > retried[1]!.time, "the finished event is the last run's");

    // The timeline: three slices, each on the track of the worker that ran it.
    const trace = await rt.timeline();
    const track = new Map(trace.traceEvents.filter((e) => e.name === 'thread_name').map((e) => [e.tid, e.args!.name]));
    const slices = trace.traceEvents.filter((e) => e.cat === 'task' && e.args!.taskId === flaky.id);
    assert.deepEqual(
      slices.map((e) => [e.ph, track.get(e.tid), e.args!.attempt, e.args!.outcome, e.args!.retried ?? false]),
      [
        ['X', retried[0]!.worker!.id, 1, 'failed', true],
        ['X', retried[1]!.worker!.id, 2, 'failed', true],
        ['X', end.worker!.id, 3, 'ok', false],
      ],
    );
    assert.match(String(slices[0]!.args!.stack), /failed on attempt 1/);

    // Every run is an invocation on Lambda: 3 for flaky, 1 for steady.
    assert.equal((await rt.cost()).lambda.requests, 4);
    await rt.shutdown();
    assert.deepEqual([last!.total, last!.done, last!.failed, last!.running, last!.pending, last!.retries, last!.rebuilds], [2, 2, 0, 0, 0, 2, 0]);
  });

  it("shows a lineage rebuild: the lost result's task runs again, the run that found it gone is retried, the counts end whole", async () => {
    let last: Progress | undefined;
    const rt = start({ timeline: true, progress: (p) => (last = p) });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    const big = rt.remote(filled, 20_000, 3); // 160 KB: stored
    await rt.get(big);
    const store = ((await (rt as unknown as { starting: Promise<{ store: unknown }> }).starting) as { store: { keys(): string[]; delete(k: string[]): Promise<void> } }).store;
    await store.delete([store.keys().find((k) => k.endsWith(big.id))!]);
    const sum = rt.remote(deepSum, [big]);
    assert.equal(await rt.get(sum), 60_000);
    const of = (id: string) => events.filter((e) => 'taskId' in e && e.taskId === id).map((e) => (e.type === 'retrying' ? `retrying:${e.reason}` : e.type));
    assert.deepEqual(of(big.id), ['submitted', 'dispatched', 'finished', 'rebuilding', 'dispatched', 'finished']);
    assert.deepEqual(of(sum.id), ['submitted', 'dispatched', 'retrying:argument-lost', 'dispatched', 'finished']);
    await rt.shutdown();
    assert.deepEqual([last!.total, last!.done, last!.failed, last!.running, last!.pending, last!.retries, last!.rebuilds], [2, 2, 0, 0, 0, 1, 1]);
  });

  it('writes a timeline that Perfetto reads: a track per worker thread, a slice per task, flows along refs', async () => {
    const rt = start({ local: { maxWorkers: 2 }, timeline: true });
    const naps = Array.from({ length: 12 }, (_, i) => rt.remote(nap, 5, `n${i}`));
    const one = rt.remote(inc, 1);
    const two = rt.remote(add, one, 1);
    const bad = rt.remote(failIfNegative, -3);
    const skipped = rt.remote(inc, bad);
    await rt.get([...naps, two]);
    await assert.rejects(rt.get(skipped));
    const path = join(dir, 'trace.json');
    assert.equal(await rt.timeline(path), path);
    const trace = JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: TraceEvent[]; otherData: { job: string } };
    assert.equal(trace.otherData.job, rt.jobId);
    const ev = trace.traceEvents;
    const tracks = new Map(ev.filter((e) => e.name === 'thread_name').map((e) => [e.tid, String(e.args!.name)]));
    const slices = ev.filter((e) => e.ph === 'X' && e.cat === 'task');
    assert.equal(slices.filter((e) => e.name === 'nap').length, 12);
    const workers = new Set(slices.map((e) => tracks.get(e.tid)));
    assert.ok(workers.size >= 1 && workers.size <= 2, `tasks ran on ${[...workers].join(', ')}`);
    for (const w of workers) assert.match(w!, /^thread-\d+$/);
    const failed = slices.find((e) => e.name === 'failIfNegative')!;
    assert.equal(failed.args!.outcome, 'failed');
    assert.match(String(failed.args!.stack), /ValidationFailure: expected a non-negative number, got -3/);
    const notRun = ev.find((e) => e.name === 'inc' && e.ph === 'i')!;
    assert.equal(notRun.args!.outcome, 'dependency');
    const incSlice = slices.find((e) => e.name === 'inc' && e.args!.taskId === one.id)!;
    const addSlice = slices.find((e) => e.name === 'add')!;
    const flowStart = ev.find((e) => e.ph === 's' && e.tid === incSlice.tid && e.ts! >= incSlice.ts! && e.ts! <= incSlice.ts! + incSlice.dur!)!;
    const flowEnd = ev.find((e) => e.ph === 'f' && e.id === flowStart.id)!;
    assert.equal(flowEnd.ts, addSlice.ts, 'the arrow ends where add starts');
    assert.ok(addSlice.ts! >= incSlice.ts! + incSlice.dur!, 'add ran after inc finished');
    // The same trace, as an object.
    assert.equal((await rt.timeline()).traceEvents.filter((e) => e.ph === 'X' && e.cat === 'task').length, slices.length);
  });

  it('says how to turn the timeline, cost or dashboard on when they are off', async () => {
    const rt = start();
    await assert.rejects(rt.timeline(), (e: unknown) => e instanceof UsageError && /init\(\{ timeline: true \}\) or set VOLLEY_TIMELINE=1/.test(e.message));
    await assert.rejects(rt.cost(), (e: unknown) => e instanceof UsageError && /init\(\{ cost: true \}\)/.test(e.message));
    await assert.rejects(rt.dashboardUrl(), (e: unknown) => e instanceof UsageError && /init\(\{ dashboard: true \}\)/.test(e.message));
    assert.throws(
      () => new Runtime({ timeline: 'yes please' as never, progress: 'sometimes' as never }),
      (e: unknown) => e instanceof UsageError && /init\(\{ progress \}\) must be 'auto', true, false or a function/.test(e.message),
    );
  });

  it('calls a progress function with counts that reach the total', async () => {
    const seen: Progress[] = [];
    const rt = start({ progress: (p) => seen.push(p), local: { maxWorkers: 2 } });
    const refs = Array.from({ length: 40 }, (_, i) => rt.remote(inc, i));
    const bad = rt.remote(failIfNegative, -1);
    await rt.get(refs);
    await assert.rejects(rt.get(bad));
    await rt.shutdown();
    const last = seen.at(-1)!;
    assert.deepEqual([last.total, last.done, last.failed, last.running, last.pending], [41, 40, 1, 0, 0]);
    assert.deepEqual(last.byFunction, { inc: { total: 40, done: 40, failed: 0, running: 0, pending: 0 }, failIfNegative: { total: 1, done: 0, failed: 1, running: 0, pending: 0 } });
  });

  it('estimates the cost on Lambda from the tasks that ran and the objects they stored and read', async () => {
    const rt = start({ cost: { architecture: 'x86_64' }, local: { maxWorkers: 2 } });
    const finished: TaskFinishedEvent[] = [];
    rt.onEvent((e) => e.type === 'finished' && finished.push(e));
    const big = rt.put(new Float64Array(50_000)); // 400 KB: the driver stores it (1 PUT)
    const f = rt.remote(filled, 50_000, 2); // a 400 KB result: the worker stores it (1 PUT)
    const s = rt.remote(deepSum, [big, f]); // reads both (2 GETs)
    const small = [1, 2, 3].map((x) => rt.remote(add.options({ memoryMB: 2048 }), x, x));
    assert.equal(await rt.get(s), 100_000);
    assert.equal((await rt.get(f)).length, 50_000); // the driver reads f (1 GET, 400 KB to the driver)
    await rt.get(small);
    const r = await rt.cost();
    assert.equal(r.estimate, true);
    assert.equal(r.lambda.requests, 5);
    assert.deepEqual(r.lambda.byMemory.map((b) => [b.memoryMB, b.architecture, b.requests]).sort(), [
      [1024, 'x86_64', 2],
      [2048, 'x86_64', 3],
    ]);
    // GB-seconds are the tasks' own reported times, each rounded up to a whole ms, at their memory.
    const expected = finished.reduce((sum, e) => sum + (e.memoryMB / 1024) * (Math.max(1, Math.ceil(e.timing!.fetchMs + e.timing!.runMs + e.timing!.storeMs)) / 1000), 0);
    assert.ok(Math.abs(r.lambda.gbSeconds - expected) < 1e-9, `${r.lambda.gbSeconds} vs ${expected}`);
    assert.equal(r.s3.putRequests, 2);
    assert.equal(r.s3.getRequests, 3);
    const bytes = 50_000 * 8;
    assert.ok(r.s3.bytesWritten >= 2 * bytes && r.s3.bytesWritten < 2 * bytes + 1000, String(r.s3.bytesWritten));
    assert.ok(r.s3.bytesToDriver >= bytes && r.s3.bytesToDriver < bytes + 500, String(r.s3.bytesToDriver));
    const usd = r.lambda.requests * 0.2e-6 + r.lambda.gbSeconds * 0.0000166667 + 2 * 0.005e-3 + 3 * 0.0004e-3 + (r.s3.bytesToDriver / 1024 ** 3) * 0.09;
    assert.ok(Math.abs(r.totalUsd - usd) < 1e-12, `${r.totalUsd} vs ${usd}`);
  });
});

describe('the summary and the default path', () => {
  const program = join(root, 'dist/test/fixtures/observed-job.js');
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, [program], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, VOLLEY_PROGRESS: '', VOLLEY_SUMMARY: '', VOLLEY_TIMELINE: '', VOLLEY_DASHBOARD: '', ...env },
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    return r;
  };

  it('prints nothing extra on a non-TTY by default (CI logs stay clean)', () => {
    const r = run({});
    assert.equal(r.stdout.trim(), 'sum 2686700');
    assert.equal(r.stderr, '');
  });

  it('prints a one-screen summary at shutdown when asked, and writes VOLLEY_TIMELINE=path', () => {
    const path = join(dir, 'from-env.json');
    const r = run({ VOLLEY_SUMMARY: '1', VOLLEY_TIMELINE: path });
    const text = r.stderr;
    assert.match(text, /volley job \S+ on local: 203 task\(s\) in .* — 202 ok, 1 not ok, 2 run\(s\) retried/);
    assert.match(text, /^ {2}square +200 +200 +0 /m);
    assert.match(text, /^ {2}failIfNegative +1 +0 +1 .*\(1 failed\)/m);
    assert.match(text, /^ {2}failOn +1 +1 +0 .*\(2 run\(s\) retried\)/m);
    assert.match(text, /slowest: \S+ /);
    // Every run is billed: 203 tasks, two of them run twice more.
    assert.match(text, /cost \(estimate for Lambda\): \$\S+ — Lambda \$\S+ \(205 requests/);
    assert.match(text, new RegExp(`volley timeline: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.ok(existsSync(path));
    const slices = JSON.parse(readFileSync(path, 'utf8')).traceEvents.filter((e: TraceEvent) => e.ph === 'X' && e.cat === 'task');
    assert.equal(slices.length, 205, 'a slice per run');
    assert.deepEqual(
      slices.filter((e: TraceEvent) => e.name === 'failOn').map((e: TraceEvent) => [e.args!.attempt, e.args!.outcome, e.args!.retried]),
      [
        [1, 'failed', true],
        [2, 'failed', true],
        [3, 'ok', undefined],
      ],
    );
    assert.ok(r.stderr.split('\n').length < 25, 'one screen');
  });
});

describe('the timeline and dashboard commands', () => {
  const cli = join(root, 'dist/infra/bin.js');
  const program = join(root, 'dist/test/fixtures/observed-job.js');
  const path = join(dir, 'cli-trace.json');

  it('volley timeline runs a program and writes its timeline; volley dashboard shows it', async () => {
    const r = spawnSync(process.execPath, [cli, 'timeline', '-o', path, '--', process.execPath, program], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, VOLLEY_SUMMARY: '0', VOLLEY_PROGRESS: '0' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'sum 2686700');
    // Said once (the program's runtime says it when it writes the file; the command adds nothing), with how to open it.
    assert.deepEqual(
      r.stderr.split('\n').filter((l) => l.includes('cli-trace.json')),
      [`volley timeline: ${path} (open it in https://ui.perfetto.dev or chrome://tracing, or show it with volley dashboard)`],
      r.stderr,
    );
    const trace = JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: TraceEvent[] };
    assert.equal(trace.traceEvents.filter((e) => e.ph === 'X' && e.cat === 'task').length, 205);

    const child = spawn(process.execPath, [cli, 'dashboard', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      while (!/http:\/\/\S+\//.test(out)) {
        const [chunk] = (await once(child.stdout, 'data')) as [string];
        out += chunk;
      }
      const url = /(http:\/\/\S+\/)/.exec(out)![1]!;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const state = (await (await fetch(`${url}state.json`)).json()) as { ended: boolean; progress: Progress; failures: Array<{ fn: string; stack?: string; retried?: boolean }> };
      assert.equal(state.ended, true);
      assert.deepEqual([state.progress.total, state.progress.done, state.progress.failed, state.progress.retries], [203, 202, 1, 2]);
      const failed = state.failures.find((f) => f.fn === 'failIfNegative')!;
      assert.match(failed.stack!, /ValidationFailure: expected a non-negative number, got -1/);
      assert.deepEqual(
        state.failures.filter((f) => f.fn === 'failOn').map((f) => [f.retried, /^TransientError: failed on attempt \d/.test(f.stack!)]),
        [
          [true, true],
          [true, true],
        ],
      );
    } finally {
      child.kill();
    }
  });

  it('volley timeline says so when the program wrote none', () => {
    const r = spawnSync(process.execPath, [cli, 'timeline', '-o', join(dir, 'none.json'), '--', process.execPath, '-e', 'console.log(1)'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /wrote no timeline to .*none\.json; a volley program writes it when it calls shutdown\(\)/);
  });

  it("volley timeline does not take a file an earlier run left at that path for this run's", () => {
    assert.ok(existsSync(path), 'the first test wrote it');
    const r = spawnSync(process.execPath, [cli, 'timeline', '-o', path, '--', process.execPath, '-e', 'console.log(1)'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /wrote no timeline to .*cli-trace\.json; a volley program writes it when it calls shutdown\(\)/);
  });

  /** Runs the CLI; its exit code and its stderr's lines. */
  const cliRun = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, lines: r.stderr.trim().split('\n') };
  };

  it('a failure (a missing or unreadable timeline, a command that cannot start) exits 1 with one line; bad usage exits 2', () => {
    const missing = cliRun('dashboard', join(dir, 'missing.json'));
    assert.equal(missing.status, 1, missing.lines.join('\n'));
    assert.equal(missing.lines.length, 1, missing.lines.join('\n'));
    assert.match(missing.lines[0]!, /^volley: volley dashboard could not read .*missing\.json: ENOENT/);

    const notTrace = join(dir, 'not-a-trace.json');
    writeFileSync(notTrace, '{"traceEvents": 1}');
    const wrong = cliRun('dashboard', notTrace);
    assert.equal(wrong.status, 1, wrong.lines.join('\n'));
    assert.deepEqual(wrong.lines, [`volley: ${notTrace} is not a volley timeline (a Chrome trace with otherData.job, as rt.timeline() writes)`]);

    const noCommand = cliRun('timeline', '-o', join(dir, 'x.json'), '--', join(dir, 'no-such-program'));
    assert.equal(noCommand.status, 1, noCommand.lines.join('\n'));
    assert.match(noCommand.lines.join('\n'), /^volley: volley timeline could not run .*no-such-program: spawnSync .* ENOENT$/);

    const usage = cliRun('dashboard');
    assert.equal(usage.status, 2, usage.lines.join('\n'));
    assert.deepEqual(usage.lines, ['volley: volley dashboard takes one saved timeline, e.g. volley dashboard trace.json; see volley dashboard --help']);
  });
});

describe('what stays out of the default path', () => {
  /** Files a module loads statically (import ... from), transitively, within dist/esm. */
  function staticGraph(entry: string): string[] {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s*"(\.\/[^"]+)"/gm)) visit(join(dirname(file), m[1]!));
      for (const m of text.matchAll(/^import\s*"(\.\/[^"]+)"/gm)) visit(join(dirname(file), m[1]!));
    };
    visit(entry);
    return [...seen];
  }

  it('the library entry, the worker thread and the Lambda bundle load no observer, no cli-progress and no server', () => {
    const esm = join(root, 'dist/esm');
    for (const entry of ['index.js', 'worker-thread.js']) {
      for (const file of staticGraph(join(esm, entry))) {
        const text = readFileSync(file, 'utf8');
        assert.doesNotMatch(text, /cli-progress|better-sse|createServer|TimelineRecorder|class CostMeter/, `${entry} loads ${file}`);
      }
    }
    const lambda = join(root, 'dist/lambda');
    for (const f of readdirSync(lambda).filter((n) => n.endsWith('.mjs'))) {
      // The bundle holds the Lambda client (nested tasks invoke their function), whose model names
      // EventSourceMapping shapes: what must stay out is an SSE client (new EventSource).
      assert.doesNotMatch(readFileSync(join(lambda, f), 'utf8'), /cli-progress|better-sse|TimelineRecorder|class CostMeter|new EventSource/, f);
    }
  });
});
