/**
 * Timeouts longer than Node's timer limit (2^31-1 ms, about 24.8 days) mean what they say on
 * the embedded runtime: before, such a timer fired after 1 ms, so a task or a get() with a
 * long timeout failed at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Runtime } from 'volley';
import { nap } from '../fixtures/tasks.js';

describe('long timeouts on the embedded runtime', () => {
  it('a task with timeoutMs 2^31, init taskTimeoutMs 1e10 and get timeoutMs 2^31 wait for the task', async () => {
    const rt = await new Runtime({ taskTimeoutMs: 1e10, local: { maxWorkers: 2 } }).ready();
    try {
      assert.equal(await rt.get(rt.remote(nap.options({ timeoutMs: 2 ** 31 }), 200, 'long task timeout')), 'long task timeout after 200 ms');
      assert.equal(await rt.get(rt.remote(nap, 200, 'long default timeout')), 'long default timeout after 200 ms');
      assert.equal(await rt.get(rt.remote(nap, 200, 'long get timeout'), { timeoutMs: 2 ** 31 }), 'long get timeout after 200 ms');
      const { ready } = await rt.wait([rt.remote(nap, 200, 'long wait timeout')], { timeoutMs: 2 ** 40 });
      assert.equal(ready.length, 1);
    } finally {
      await rt.shutdown();
    }
  });
});
