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

describe('a backend that cannot start', () => {
  it('ends every task submitted meanwhile with a finished event', async () => {
    const nowhere = 'http://127.0.0.1:9';
    const rt = new Runtime({ target: 'localstack', aws: { lambdaEndpoint: nowhere, s3Endpoint: nowhere } });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    try {
      const a = rt.remote(inc, 1);
      const b = rt.remote(inc, a);
      await assert.rejects(rt.ready(), (e: unknown) => e instanceof ConfigError && /could not read the outputs of stack volley-local/.test(e.message));
      await assert.rejects(rt.get(a), (e: unknown) => e instanceof ConfigError);
      await assert.rejects(rt.get(b), (e: unknown) => e instanceof DependencyError && e.cause instanceof ConfigError);
      const finished = events.flatMap((e) => (e.type === 'finished' ? [[e.taskId, e.outcome, e.error?.name]] : []));
      assert.deepEqual(finished, [
        [a.id, 'crashed', 'ConfigError'],
        [b.id, 'dependency', 'DependencyError'],
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
