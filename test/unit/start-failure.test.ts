/**
 * A runtime whose backend cannot start (here: the localstack target with nothing listening, so
 * its stack's outputs cannot be read) fails every task submitted meanwhile, and each of those
 * tasks ends with a finished event, as a task does however it ends: the one that failed with
 * the start's error, the one that depends on it with a DependencyError. So do the tasks a
 * shutdown() ends, running or queued.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, DependencyError, Runtime, type VolleyEvent } from 'volley';
import { inc, nap } from '../fixtures/tasks.js';

/** A runtime whose backend cannot start (its stack's endpoints answer nothing), and the events it emits. */
function unreachable(): { rt: Runtime; events: VolleyEvent[] } {
  const nowhere = 'http://127.0.0.1:9';
  const rt = new Runtime({ target: 'localstack', aws: { lambdaEndpoint: nowhere, s3Endpoint: nowhere } });
  const events: VolleyEvent[] = [];
  rt.onEvent((e) => events.push(e));
  return { rt, events };
}

describe('a backend that cannot start', () => {
  it('ends every task submitted meanwhile with a finished event', async () => {
    const { rt, events } = unreachable();
    try {
      const a = rt.remote(inc, 1);
      const b = rt.remote(inc, a);
      await assert.rejects(rt.ready(), (e: unknown) => e instanceof ConfigError && /could not read the outputs of stack volley-local/.test(e.message));
      await assert.rejects(rt.get(a), (e: unknown) => e instanceof ConfigError);
      await assert.rejects(rt.get(b), (e: unknown) => e instanceof DependencyError && e.cause instanceof ConfigError);
      const finished = events.flatMap((e) => (e.type === 'finished' ? [[e.taskId, e.outcome, e.error?.name]] : []));
      assert.deepEqual(finished, [
        [a.id, 'failed', 'ConfigError'],
        [b.id, 'dependency', 'DependencyError'],
      ]);
    } finally {
      await rt.shutdown();
    }
  });

  it('fails every task submitted after the start failed, at once, with the same error and a finished event', async () => {
    const { rt, events } = unreachable();
    try {
      const early = rt.remote(inc, 1);
      const startError = await rt.ready().then(
        () => assert.fail('the runtime started'),
        (e: unknown) => e,
      );
      assert.ok(startError instanceof ConfigError);
      await assert.rejects(rt.get(early), (e: unknown) => e === startError);
      // Submitted after the failure: no backend will ever run them.
      const late = rt.remote(inc, 2);
      const dependent = rt.remote(inc, late);
      const [lateGot, dependentGot] = await Promise.allSettled([rt.get(late), rt.get(dependent)]);
      assert.equal(lateGot.status === 'rejected' && lateGot.reason, startError, 'the same start error');
      assert.ok(dependentGot.status === 'rejected' && dependentGot.reason instanceof DependencyError && dependentGot.reason.cause === startError);
      const finished = events.flatMap((e) => (e.type === 'finished' ? [[e.taskId, e.outcome, e.error?.message]] : []));
      assert.deepEqual(finished, [
        [early.id, 'failed', startError.message],
        [late.id, 'failed', startError.message],
        [dependent.id, 'dependency', dependentGot.reason.message],
      ]);
    } finally {
      await rt.shutdown();
    }
  });

  it('shutdown() ends the tasks still running or queued, each with one finished event', async () => {
    const rt = new Runtime({ maxConcurrency: 1, local: { maxWorkers: 1 } });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    const running = rt.remote(nap, 60_000, 'long');
    const queued = rt.remote(inc, 1);
    await new Promise<void>((resolve) => {
      const stop = rt.onEvent((e) => {
        if (e.type === 'dispatched' && e.taskId === running.id) {
          stop();
          resolve();
        }
      });
    });
    await rt.shutdown();
    const finished = events.flatMap((e) => (e.type === 'finished' ? [[e.taskId, e.outcome]] : []));
    assert.deepEqual(finished, [
      [running.id, 'cancelled'],
      [queued.id, 'cancelled'],
    ]);
  });
});
