/**
 * Nested tasks on the embedded runtime with two workers: recursions deeper than the pool
 * complete, because a task blocked in get/wait does not hold a worker slot its children need.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime, TaskCancelledError } from 'volley';
import { awaitCancellable, childThenFail, startWithPredicate, treeSum } from '../fixtures/nested-tasks.js';

/** Waits (polling, no time limit of its own: the test runner's bounds it) until `file` holds `line`. */
async function untilLine(file: string, line: string): Promise<void> {
  while (!(existsSync(file) && readFileSync(file, 'utf8').split('\n').includes(line))) await sleep(20);
}
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

  it('cancel({ recursive: true }) of a parent reaches the nested task it started and is waiting for', async () => {
    const rt = await new Runtime({ local: { maxWorkers: 2 } }).ready();
    try {
      const file = join(mkdtempSync(join(tmpdir(), 'volley-nested-cancel-')), 'child');
      const parent = rt.remote(awaitCancellable, file);
      await untilLine(file, 'started');
      rt.cancel(parent, { recursive: true });
      await assert.rejects(rt.get(parent), TaskCancelledError);
      // The child's signal was aborted: it records why and returns.
      await untilLine(file, 'aborted: TaskCancelledError');
    } finally {
      await rt.shutdown();
    }
  });

  it("a retried parent's second run starts its own children (ids under the run), not the first run's again", async () => {
    const rt = await new Runtime({ local: { maxWorkers: 2 }, retryBaseDelayMs: 1, retryMaxDelayMs: 2 }).ready();
    try {
      // Run 1 squares 2 and fails; run 2 squares 3. Reusing run 1's child would give 4.
      assert.equal(await rt.get(rt.remote(childThenFail)), 9);
    } finally {
      await rt.shutdown();
    }
  });

  it('a nested .remote() with retryExceptions as a function is refused at the call, naming the fix', async () => {
    const rt = await new Runtime({ local: { maxWorkers: 1 } }).ready();
    try {
      const said = await rt.get(rt.remote(startWithPredicate));
      assert.match(said, /^UsageError: square\.remote\(\) inside a task on the embedded runtime cannot take retryExceptions as a function/);
      assert.match(said, /retryExceptions: \['MyError'\]/);
    } finally {
      await rt.shutdown();
    }
  });
});
