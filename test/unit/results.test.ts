/** What an invocation that failed outright becomes, and the per-function totals of workers' timings. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, ObjectStoreError, TaskError, WorkerCrashedError } from 'volley';
import { addTiming, invokeFailure, outcomeOf, type TaskStats } from '../../sdk/results.js';
import { PROTOCOL_VERSION } from '../../sdk/protocol.js';

describe('task outcomes', () => {
  it('an invoker failure becomes an infrastructure TaskError naming the task, retryable as its cause says', () => {
    const plain = invokeFailure('f', 't1', new Error('socket hang up'));
    assert.ok(plain instanceof TaskError);
    assert.equal(plain.message, 'Task f (t1) could not be run: socket hang up');
    assert.equal(plain.functionName, 'f');
    assert.equal(plain.taskId, 't1');
    assert.equal(plain.fault, 'infrastructure');
    assert.equal(plain.retryable, false);
    assert.equal((plain.cause as Error).message, 'socket hang up');

    const transient = new ObjectStoreError('SlowDown', 'k', { retryable: true });
    assert.equal(invokeFailure('f', 't1', transient).retryable, true);
    const notRetryable = new ObjectStoreError('AccessDenied', 'k', { retryable: false });
    assert.equal(invokeFailure('f', 't1', notRetryable).retryable, false);
    assert.equal(invokeFailure('f', 't1', Object.assign(new Error('x'), { retryable: true })).retryable, false, 'only a volley error says it is transient');

    assert.equal(invokeFailure('f', 't1', 'a string').message, 'Task f (t1) could not be run: a string', 'a non-Error rejection');
    assert.equal(invokeFailure('f', 't1', undefined).message, 'Task f (t1) could not be run: undefined');
  });

  it('passes a TaskError or ConfigError on as it is', () => {
    const crash = new WorkerCrashedError('f', 't1', 'exit 1');
    assert.equal(invokeFailure('f', 't1', crash), crash);
    const config = new ConfigError('no such module');
    assert.equal(invokeFailure('f', 't1', config), config);
  });

  it('a result envelope becomes a payload or the remote error', () => {
    const bytes = new Uint8Array([1, 2]);
    const timing = { fetchMs: 0, runMs: 0, storeMs: 0 };
    assert.deepEqual(outcomeOf('f', 't1', { v: PROTOCOL_VERSION, kind: 'value', bytes, timing } as never), { payload: { kind: 'inline', bytes } });
    assert.deepEqual(outcomeOf('f', 't1', { v: PROTOCOL_VERSION, kind: 'stored', key: 'k', size: 9, timing } as never), { payload: { kind: 'stored', key: 'k', size: 9 } });
    const out = outcomeOf('f', 't1', { v: PROTOCOL_VERSION, kind: 'error', error: { name: 'TypeError', message: 'bad' }, fault: 'user', timing } as never) as { error: TaskError };
    assert.equal(out.error.message, 'Task f (t1) failed: TypeError: bad');
    assert.equal(out.error.fault, 'user');
  });

  it("adds each run's timing to its function's totals", () => {
    const stats = new Map<string, TaskStats>();
    addTiming(stats, 'f', { fetchMs: 1, runMs: 10, storeMs: 2 });
    addTiming(stats, 'f', { fetchMs: 3, runMs: 20, storeMs: 4 });
    addTiming(stats, 'g', { fetchMs: 0, runMs: 5, storeMs: 0 });
    assert.deepEqual(Object.fromEntries(stats), {
      f: { tasks: 2, fetchMs: 4, runMs: 30, storeMs: 6 },
      g: { tasks: 1, fetchMs: 0, runMs: 5, storeMs: 0 },
    });
  });
});
