/**
 * Nested tasks on the embedded runtime with two workers: recursions deeper than the pool
 * complete, because a task blocked in get/wait does not hold a worker slot its children need.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Runtime } from 'volley';
import { treeSum } from '../fixtures/nested-tasks.js';
import { defineNestedScenarios } from '../nested-scenarios.js';

defineNestedScenarios({
  tier: 'the embedded runtime (maxWorkers 2)',
  start: () => new Runtime({ local: { maxWorkers: 2 }, maxTaskDepth: 8 }).ready(),
  maxTaskDepth: 8,
  depth: 6,
});

describe('nested tasks on the embedded runtime', () => {
  it('a fan-out of 15 blocked parents over 16 leaves completes with maxWorkers 1', async () => {
    const rt = await new Runtime({ local: { maxWorkers: 1 } }).ready();
    try {
      const xs = Array.from({ length: 128 }, (_, i) => i);
      // Without the blocked tasks' slots released this deadlocks: the deadline turns a hang into a failure.
      assert.equal(await rt.get(rt.remote(treeSum, xs, 8), { timeoutMs: 120_000 }), (127 * 128) / 2);
    } finally {
      await rt.shutdown();
    }
  });

  it('a recursion whose leaves are quick, so that its tasks are handed out in batches, completes deeper than the pool', async () => {
    const rt = await new Runtime({ local: { maxWorkers: 2 } }).ready();
    try {
      // Many quick runs make the function count as short: its queued tasks then go to a worker several at a time.
      await rt.get(Array.from({ length: 300 }, () => rt.remote(treeSum, [1, 2], 8)));
      const xs = Array.from({ length: 64 }, (_, i) => i);
      // A parent blocked with its own children batched behind it on its worker would deadlock; the deadline turns that into a failure.
      assert.equal(await rt.get(rt.remote(treeSum, xs, 2), { timeoutMs: 120_000 }), 2016);
    } finally {
      await rt.shutdown();
    }
  });
});
