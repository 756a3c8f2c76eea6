/**
 * A task blocked in get() or wait() does not count against maxConcurrency (its children may need
 * the room), and that is counted per run: a run that ended with a get() still waiting in the
 * driver (its worker crashed) leaves no count behind for the next run. Here the task's retry,
 * with the only free slot, waits for a child: the child must get the slot.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Runtime } from 'volley';
import { crashWhileBlocked } from '../fixtures/blocked-tasks.js';

// Two slots: the parent, and its first run's child that never finishes.
const rt = new Runtime({ maxConcurrency: 2, retryBaseDelayMs: 5, retryMaxDelayMs: 20, local: { maxWorkers: 3 } });
after(() => rt.shutdown());

describe("a blocked task's count is its run's", () => {
  it("a retried task blocked in get() leaves its slot to its child, whatever its crashed run's get() still waits for", async () => {
    const ref = rt.remote(crashWhileBlocked, 3);
    // A deadline on a hang, not on speed: without the fix, the child never gets a slot.
    assert.equal(await rt.get(ref, { timeoutMs: 60_000 }), 9);
    assert.equal(rt.faultCounts.retries, 1);
  });
});
