/**
 * On Lambda, a task on a cold task thread gets its timeout from its start (thread-start.test.ts),
 * but never past the invocation's own end (Lambda's remaining time when the handler started,
 * less the margin the handler keeps): past it, Lambda would kill the invocation and the driver
 * would get no answer. The thread here is held before it serves until after the invocation's
 * end; the task's own timeout is a minute. The handler must answer in time: a timeout for a task
 * sent alone, "not started" for a batch's tasks (the driver sends them again); before, the task
 * ran once the thread served and was answered after the invocation's end.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createHandler, invocationEnd, taskDeadline } from '../../sdk/aws/handler.js';
import { PROTOCOL_VERSION, toWire, type TaskEnvelope } from '../../sdk/protocol.js';
import { encodeArgs } from '../../sdk/serialize.js';
import { slowThreadGate } from '../fixtures/slow-task-thread.js';

const gate = slowThreadGate();
rmSync(gate, { force: true });
after(() => rmSync(gate, { force: true }));

/** `inc(41)` (test/fixtures/tasks.ts) in wire form; or another of its tasks. */
function incTask(id: string, fn = 'inc', args: unknown[] = [41]): unknown {
  const env: TaskEnvelope = {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'job1/AAAAAAAAAAAAAAAAAAAAAA',
    taskId: id,
    fn,
    args: { kind: 'inline', bytes: encodeArgs(args, () => {}) },
    deps: {},
    resultKey: `volley/jobs/job1/AAAAAAAAAAAAAAAAAAAAAA/${id}`,
    inlineLimit: 1024,
  };
  return JSON.parse(JSON.stringify(toWire(env)));
}

/** Lambda's remaining time at the handler's start: the invocation ends 500 ms before it. */
const REMAINING_MS = 1500;
const TIMEOUT_MS = 60_000;

/**
 * Calls a fresh handler (its task thread held at its start) with `event`, and lets the thread
 * serve once the invocation's end is past; returns the answer once the thread was let go.
 */
async function invokeCold(event: unknown): Promise<Record<string, unknown>> {
  rmSync(gate, { force: true });
  const handler = createHandler({ VOLLEY_BUCKET: 'volley-thread-deadline' }, { taskThread: new URL('../fixtures/slow-task-thread.js', import.meta.url) });
  const answer = handler(event, { getRemainingTimeInMillis: () => REMAINING_MS });
  await new Promise((r) => setTimeout(r, REMAINING_MS + 300));
  writeFileSync(gate, '');
  return JSON.parse(JSON.stringify(await answer)) as Record<string, unknown>;
}

/** The answer's error says the invocation's time ran out first: the function's timeout, and the fix. */
function assertInvocationEnded(error: unknown, task: string): void {
  const e = error as { name: string; message: string; code: string; invocationMs?: number };
  assert.equal(e.name, 'TaskTimeoutError');
  assert.equal(e.code, 'TASK_TIMEOUT');
  assert.equal(e.invocationMs, REMAINING_MS, 'the time the invocation had in all');
  assert.equal(
    e.message,
    `Task ${task} was stopped when its Lambda invocation ran out of time, before its own timeout of ${TIMEOUT_MS} ms: the invocation had 1.5 s in all, the function's timeout (timeout in serverless.yml). ` +
      "Fix: deploy the function with a longer timeout than the task's (npx volley deploy --timeout S, at most 900 s), or make the task shorter and give it a timeoutMs within the function's",
  );
}

describe('a task on a cold task thread is stopped at the invocation’s end, not after it', () => {
  Object.assign(process.env, { VOLLEY_SLOW_THREAD: '1', VOLLEY_BUCKET: 'volley-thread-deadline' });
  after(() => {
    delete process.env.VOLLEY_SLOW_THREAD;
  });

  it('the deadline: the task’s own timeout from its start, or the invocation’s end if that is sooner', () => {
    assert.equal(invocationEnd(undefined, 1000), Number.POSITIVE_INFINITY);
    assert.equal(invocationEnd(REMAINING_MS, 1000), 1000 + REMAINING_MS - 500);
    // Started late on a cold thread (at 1900, the invocation ending at 2000): the end, not 1900 + its limit.
    assert.equal(taskDeadline(1900, TIMEOUT_MS, 2000), 2000);
    assert.equal(taskDeadline(1900, 50, 2000), 1950);
    assert.equal(taskDeadline(1900, 50, Number.POSITIVE_INFINITY), 1950);
  });

  it('a task sent alone is answered as timed out, before the thread could run it, saying the invocation’s time ran out', async () => {
    const out = await invokeCold({ v: PROTOCOL_VERSION, kind: 'invoke', task: incTask('alone'), timeoutMs: TIMEOUT_MS, memoryMB: 1024 });
    assert.equal(out.kind, 'error', JSON.stringify(out).slice(0, 300));
    assert.equal(out.taskId, 'alone');
    assertInvocationEnded(out.error, 'inc (alone)');
  });

  it('a batch whose thread starts after the invocation’s end answers its tasks not started', async () => {
    const item = (id: string) => ({ task: incTask(id), timeoutMs: TIMEOUT_MS, memoryMB: 1024 });
    const out = await invokeCold({ v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 2 * TIMEOUT_MS, tasks: [item('b1'), item('b2')] });
    assert.equal(out.kind, 'batch');
    assert.deepEqual(
      (out.results as Array<{ kind: string; taskId: string }>).map((r) => [r.kind, r.taskId]),
      [
        ['notStarted', 'b1'],
        ['notStarted', 'b2'],
      ],
    );
  });
});

describe('a running task stopped at its deadline: the message says which end came first', () => {
  // The task thread serves at once (its gate open).
  before(() => {
    process.env.VOLLEY_SLOW_THREAD = '1';
    writeFileSync(gate, '');
  });
  after(() => {
    delete process.env.VOLLEY_SLOW_THREAD;
  });
  const napTask = (id: string, ms: number) => incTask(id, 'nap', [ms, id]);

  for (const thread of ['on', 'off']) {
    const handlerFor = () =>
      createHandler({ VOLLEY_BUCKET: 'volley-thread-deadline', VOLLEY_TASK_THREAD: thread }, thread === 'on' ? { taskThread: new URL('../fixtures/slow-task-thread.js', import.meta.url) } : {});

    it(`the invocation’s end, before the task’s own timeout (task thread ${thread})`, async () => {
      const out = (await handlerFor()(
        { v: PROTOCOL_VERSION, kind: 'invoke', task: napTask('long', 3000), timeoutMs: TIMEOUT_MS, memoryMB: 1024 },
        { getRemainingTimeInMillis: () => REMAINING_MS },
      )) as Record<string, unknown>;
      assert.equal(out.kind, 'error', JSON.stringify(out).slice(0, 300));
      assertInvocationEnded(JSON.parse(JSON.stringify(out.error)), 'nap (long)');
    });

    it(`its own timeout, before the invocation’s end: the message speaks of the task’s timeout only (task thread ${thread})`, async () => {
      const out = (await handlerFor()({ v: PROTOCOL_VERSION, kind: 'invoke', task: napTask('short', 3000), timeoutMs: 200, memoryMB: 1024 }, { getRemainingTimeInMillis: () => TIMEOUT_MS })) as Record<
        string,
        unknown
      >;
      assert.equal(out.kind, 'error', JSON.stringify(out).slice(0, 300));
      const e = out.error as { name: string; message: string; invocationMs?: number };
      assert.equal(e.name, 'TaskTimeoutError');
      assert.equal(e.invocationMs, undefined);
      assert.equal(e.message, 'Task nap (short) timed out after 200 ms and was stopped; raise its timeout with nap.options({ timeoutMs }) if it needs longer');
    });
  }
});
