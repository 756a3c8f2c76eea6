/** The timeline: Chrome trace event format, one track per worker, phases, flows, and the bounded buffer. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TaskFinishedEvent, TaskRetryingEvent } from '../../sdk/events.js';
import { JobCounts } from '../../sdk/observe/counts.js';
import { RecentTasks } from '../../sdk/observe/recent.js';
import { eventsFromTrace } from '../../sdk/observe/replay.js';
import { type TraceEvent, TimelineRecorder, writeTrace } from '../../sdk/observe/timeline.js';

function task(over: Partial<TaskFinishedEvent> & { taskId: string }): TaskFinishedEvent {
  return { type: 'finished', time: 0, fn: 'f', attempt: 1, outcome: 'ok', memoryMB: 1024, submittedAt: 0, deps: [], ...over };
}

describe('timeline', () => {
  it('writes tasks as slices on one track per worker, with fetch/run/store inside, a flow from producer to consumer, and a track for tasks that never ran', async () => {
    const rec = new TimelineRecorder({ job: 'j1', target: 'local' }, 100);
    const base = performance.now();
    // make on thread-1: started at +10 ms, 2 + 5 + 1 ms, result arrives at +19.
    rec.record(
      task({
        taskId: 'make-1',
        fn: 'make',
        worker: { id: 'thread-1' },
        submittedAt: base,
        dispatchedAt: base + 1,
        startedAt: base + 10,
        timing: { fetchMs: 2, runMs: 5, storeMs: 1 },
        time: base + 19,
        result: { bytes: 800_000, stored: true },
      }),
    );
    // use on thread-2 reads make-1's result; its worker's clock says it started before dispatch: clamped to dispatch.
    rec.record(
      task({
        taskId: 'use-2',
        fn: 'use',
        deps: ['make-1'],
        worker: { id: 'thread-2' },
        submittedAt: base,
        dispatchedAt: base + 20,
        startedAt: base + 15,
        timing: { fetchMs: 1, runMs: 3, storeMs: 0 },
        time: base + 30,
      }),
    );
    // a failure with its stack, on thread-1 again
    rec.record(
      task({
        taskId: 'boom-3',
        fn: 'boom',
        outcome: 'failed',
        worker: { id: 'thread-1' },
        submittedAt: base,
        dispatchedAt: base + 20,
        startedAt: base + 21,
        timing: { fetchMs: 0, runMs: 2, storeMs: 0 },
        time: base + 24,
        error: { name: 'Error', message: 'bad input', stack: 'Error: bad input\n    at boom (tasks.js:3:9)' },
      }),
    );
    // a dependent of the failure never ran
    rec.record(task({ taskId: 'after-4', fn: 'after', outcome: 'dependency', deps: ['boom-3'], submittedAt: base, time: base + 24 }));

    const trace = JSON.parse(JSON.stringify(rec.toTrace())) as { traceEvents: TraceEvent[]; displayTimeUnit: string; otherData: Record<string, unknown> };
    assert.equal(trace.displayTimeUnit, 'ms');
    assert.equal(trace.otherData.job, 'j1');
    assert.equal(trace.otherData.tasksRecorded, 4);
    const ev = trace.traceEvents;
    for (const e of ev) {
      assert.ok(['X', 'M', 'i', 's', 'f'].includes(e.ph), `phase ${e.ph}`);
      assert.equal(typeof e.pid, 'number');
      assert.equal(typeof e.tid, 'number');
      if (e.ph !== 'M') assert.ok(Number.isInteger(e.ts), `ts of ${e.name} is whole microseconds`);
    }
    const names = new Map(ev.filter((e) => e.name === 'thread_name').map((e) => [e.tid, (e.args as { name: string }).name]));
    const tidOf = (w: string) => [...names].find(([, n]) => n === w)![0];
    assert.ok(names.has(tidOf('thread-1')) && names.has(tidOf('thread-2')));
    assert.notEqual(tidOf('thread-1'), tidOf('thread-2'));

    const slice = (name: string) => ev.find((e) => e.ph === 'X' && e.name === name)!;
    const make = slice('make');
    assert.equal(make.tid, tidOf('thread-1'));
    assert.equal(make.dur, 8000); // 2 + 5 + 1 ms in µs
    assert.deepEqual(
      { taskId: make.args!.taskId, outcome: make.args!.outcome, attempt: make.args!.attempt, resultBytes: make.args!.resultBytes, queuedMs: make.args!.queuedMs },
      { taskId: 'make-1', outcome: 'ok', attempt: 1, resultBytes: 800_000, queuedMs: 1 },
    );
    const phases = ev.filter((e) => e.ph === 'X' && e.cat === 'phase' && (e.args as { taskId: string }).taskId === 'make-1');
    assert.deepEqual(
      phases.map((p) => [p.name, p.dur]),
      [
        ['fetch', 2000],
        ['run', 5000],
        ['store', 1000],
      ],
    );
    assert.equal(phases[0]!.ts, make.ts);
    assert.equal(phases[2]!.ts! + phases[2]!.dur!, make.ts! + make.dur!, 'phases end with their task');

    const use = slice('use');
    assert.equal(use.tid, tidOf('thread-2'));
    assert.equal(use.ts! - make.ts!, 10_000, 'a start before dispatch is clamped to dispatch (+20 ms vs +10 ms)');
    const s = ev.find((e) => e.ph === 's')!;
    const f = ev.find((e) => e.ph === 'f')!;
    assert.equal(s.id, f.id);
    assert.equal(s.tid, make.tid);
    assert.ok(s.ts! >= make.ts! && s.ts! < make.ts! + make.dur!, 'the flow starts inside the producer');
    assert.equal(f.tid, use.tid);
    assert.equal(f.ts, use.ts);
    assert.equal(f.bp, 'e');

    const boom = slice('boom');
    assert.equal(boom.args!.outcome, 'failed');
    assert.equal(boom.args!.error, 'Error: bad input');
    assert.match(String(boom.args!.stack), /at boom \(tasks\.js:3:9\)/);
    const notRun = ev.find((e) => e.name === 'after')!;
    assert.equal(notRun.ph, 'i');
    assert.equal(names.get(notRun.tid), 'not run (dependency failed or cancelled)');
    assert.equal(notRun.args!.outcome, 'dependency');

    // The file is the same trace, as JSON.
    const dir = mkdtempSync(join(tmpdir(), 'volley-tl-'));
    try {
      const path = join(dir, 't.json');
      assert.equal(await writeTrace(rec.toTrace(), path), path);
      const fromFile = JSON.parse(readFileSync(path, 'utf8'));
      assert.deepEqual(fromFile, trace);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives every run its slice on the track of the worker that ran it: a task retried twice has three, the first two marked retried', () => {
    const rec = new TimelineRecorder({ job: 'j3', target: 'local' }, 100);
    const base = performance.now();
    const run = (attempt: number, worker: string, at: number): Omit<TaskRetryingEvent, 'type' | 'reason' | 'error' | 'outcome'> => ({
      time: base + at + 6,
      taskId: 'flaky-1',
      fn: 'flaky',
      attempt,
      memoryMB: 1024,
      submittedAt: base,
      dispatchedAt: base + at,
      deps: [],
      worker: { id: worker },
      startedAt: base + at + 1,
      timing: { fetchMs: 0, runMs: 4, storeMs: 0 },
    });
    const error = { name: 'TransientError', message: 'failed on attempt 1', stack: 'TransientError: failed on attempt 1\n    at flaky (tasks.js:3:9)' };
    rec.onEvent({ ...run(1, 'thread-1', 0), type: 'retrying', reason: 'retry', delayMs: 120, outcome: 'failed', error });
    rec.onEvent({ ...run(2, 'thread-2', 200), type: 'retrying', reason: 'retry', delayMs: 260, outcome: 'timeout', error: { name: 'TaskTimeoutError', message: 'timed out' } });
    rec.onEvent({ ...run(3, 'thread-1', 500), type: 'finished', outcome: 'ok', result: { bytes: 9, stored: false } });
    const trace = rec.toTrace();
    const slices = trace.traceEvents.filter((e) => e.cat === 'task');
    const track = (tid: number) => trace.traceEvents.find((e) => e.name === 'thread_name' && e.tid === tid)!.args!.name;
    assert.deepEqual(
      slices.map((e) => [e.ph, track(e.tid), e.args!.attempt, e.args!.outcome, e.args!.retried, e.args!.retryInMs]),
      [
        ['X', 'thread-1', 1, 'failed', true, 120],
        ['X', 'thread-2', 2, 'timeout', true, 260],
        ['X', 'thread-1', 3, 'ok', undefined, undefined],
      ],
    );
    assert.equal(slices[0]!.args!.stack, error.stack);
    assert.equal(rec.size.recorded, 3);

    // Read back (volley dashboard trace.json): the same counts as the live job had.
    const counts = new JobCounts();
    const recent = new RecentTasks();
    for (const e of eventsFromTrace(JSON.parse(JSON.stringify(trace)))) {
      counts.onEvent(e);
      recent.onEvent(e);
    }
    const p = counts.snapshot();
    assert.deepEqual([p.total, p.done, p.failed, p.running, p.pending, p.retries], [1, 1, 0, 0, 0, 2]);
    const { tasks, failures } = recent.since(0);
    assert.deepEqual(
      tasks.map((t) => [t.worker, t.attempt, t.outcome, t.retried]),
      [
        ['thread-1', 1, 'failed', true],
        ['thread-2', 2, 'timeout', true],
        ['thread-1', 3, 'ok', undefined],
      ],
    );
    assert.deepEqual(
      failures.map((f) => [f.attempt, f.name, f.retried, f.stack]),
      [
        [1, 'TransientError', true, error.stack],
        [2, 'TaskTimeoutError', true, undefined],
      ],
    );
  });

  it('keeps only the most recent maxTasks tasks and says how many it dropped', () => {
    const rec = new TimelineRecorder({ job: 'j', target: 'local' }, 100);
    const base = performance.now();
    for (let i = 0; i < 1000; i++) {
      rec.record(
        task({
          taskId: `t-${i}`,
          worker: { id: `thread-${i % 3}` },
          submittedAt: base + i,
          dispatchedAt: base + i,
          startedAt: base + i,
          timing: { fetchMs: 0, runMs: 0.5, storeMs: 0 },
          time: base + i + 1,
          error: i % 10 === 0 ? { name: 'Error', message: `e${i}` } : undefined,
          outcome: i % 10 === 0 ? 'failed' : 'ok',
        }),
      );
    }
    assert.deepEqual(rec.size, { recorded: 100, dropped: 900 });
    const trace = rec.toTrace();
    const slices = trace.traceEvents.filter((e) => e.ph === 'X' && e.cat === 'task');
    assert.equal(slices.length, 100);
    assert.deepEqual(
      slices.map((e) => e.args!.taskId),
      Array.from({ length: 100 }, (_, k) => `t-${900 + k}`),
      'the newest 100, oldest first',
    );
    assert.equal(slices.filter((e) => e.args!.error).length, 10, 'errors of dropped tasks are dropped with them');
    assert.deepEqual(trace.otherData, { ...trace.otherData, tasksRecorded: 100, tasksDropped: 900, maxTasks: 100 });
    assert.ok(trace.traceEvents.some((e) => e.ph === 'i' && /900 earlier tasks dropped \(buffer of 100\)/.test(e.name)));
  });
});
