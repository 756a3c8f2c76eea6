/**
 * Chaining on the embedded runtime: the pool hands a worker a short task's waiting dependents
 * in the same batch as their producers (InvokeOptions.after), and the worker runs them after
 * the producers, with their results, without a trip through the driver. The orchestrator's side
 * is the Lambda path's (test/unit/chain.test.ts); here the real pool and worker threads: each
 * task runs once, results are those of the plain path, and a producer that crashes its worker
 * sends its followers back to the orchestrator, which runs them once after the retry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Runtime, type ObjectRef, type VolleyEvent } from 'volley';
import { dagNode, nodeValue, type NodeSpec } from '../fixtures/failure-tasks.js';
import { add, inc } from '../fixtures/tasks.js';

interface PoolView {
  stats(): { chained: number };
  chains(fn: string): boolean;
}

async function poolOf(rt: Runtime): Promise<PoolView> {
  return (await rt.backendReady()).invoker as unknown as PoolView;
}

function tree(rt: Runtime, lo: number, hi: number): ObjectRef<number> {
  if (hi - lo === 1) return rt.remote(inc, lo - 1);
  const mid = (lo + hi) >>> 1;
  return rt.remote(add, tree(rt, lo, mid), tree(rt, mid, hi));
}

describe('chaining on the embedded runtime', () => {
  it('runs a tree of short tasks with followers in their producers’ batches: each task once, the same sum', { timeout: 60_000 }, async () => {
    const rt = await new Runtime({ local: { maxWorkers: 2 } }).ready();
    try {
      // Until both functions are measured short (only short tasks are batched, and chained).
      for (let i = 0; i < 3; i++) await rt.get([rt.remote(add, 1, 2), rt.remote(inc, 1)]);
      const pool = await poolOf(rt);
      const before = { chained: pool.stats().chained, add: rt.stats().get('add')!.tasks, inc: rt.stats().get('inc')!.tasks };
      const dispatched = new Map<string, number>();
      rt.onEvent((e) => {
        if (e.type === 'dispatched') dispatched.set(e.taskId, (dispatched.get(e.taskId) ?? 0) + 1);
      });
      assert.equal(await rt.get(tree(rt, 0, 256)), (256 * 255) / 2);
      assert.ok(pool.stats().chained - before.chained > 0, 'some sums ran with their inputs, in one batch');
      assert.equal(rt.stats().get('add')!.tasks - before.add, 255, 'each sum ran once (a follower handed back is not run twice)');
      assert.equal(rt.stats().get('inc')!.tasks - before.inc, 256);
      assert.equal(dispatched.size, 511);
      assert.ok(
        [...dispatched.values()].every((n) => n === 1),
        'one dispatched event per task: a hand-back is not a run',
      );
    } finally {
      await rt.shutdown();
    }
  });

  // With one worker, none is free when it crashes: the followers must still be back at the
  // orchestrator before the retry goes out (its timer is shorter than a thread's start), not
  // left queued in the pool until the new worker is ready.
  for (const maxWorkers of [2, 1]) {
    it(`a producer that crashes its worker sends its followers back: they run once, after its retry, on its result (${maxWorkers} worker${maxWorkers > 1 ? 's' : ''})`, {
      timeout: 60_000,
    }, async () => {
      const rt = await new Runtime({ retryBaseDelayMs: 1, retryMaxDelayMs: 5, local: { maxWorkers } }).ready();
      try {
        // Chaining needs dagNode measured short (its runs' moving average under 1 ms): a few runs
        // do it on a quiet machine, more on a loaded one, where a cold run can take longer.
        const pool = await poolOf(rt);
        for (let i = 0; i < 200 && (i < 3 || !pool.chains('dagNode')); i++) await rt.get([rt.remote(dagNode, { id: 100 + i, size: 0 })]);
        assert.ok(pool.chains('dagNode'), 'dagNode is measured short, so the pool chains its tasks');
        const chainedBefore = pool.stats().chained;
        const events: VolleyEvent[] = [];
        rt.onEvent((e) => events.push(e));
        const specs: NodeSpec[] = [
          { id: 1, size: 0, faults: { 1: 'crash' } },
          { id: 2, size: 0 },
          { id: 3, size: 0 },
        ];
        // Submitted together: b and c go to the worker in a's batch, as followers.
        const a = rt.remote(dagNode, specs[0]!);
        const b = rt.remote(dagNode, specs[1]!, a);
        const c = rt.remote(dagNode, specs[2]!, b, a);
        const va = nodeValue(specs[0]!, []);
        const vb = nodeValue(specs[1]!, [va]);
        assert.deepEqual(await rt.get([a, b, c]), [va, vb, nodeValue(specs[2]!, [vb, va])]);
        assert.equal(rt.faultCounts.retries, 1, 'only a ran again');
        const of = (ref: ObjectRef<unknown>, type: VolleyEvent['type']) => events.filter((e) => e.type === type && 'taskId' in e && e.taskId === ref.id);
        assert.equal(of(a, 'dispatched').length, 2);
        assert.equal(of(b, 'dispatched').length, 1, 'b ran once: handed back, not failed');
        assert.equal(of(c, 'dispatched').length, 1);
        assert.deepEqual(
          [b, c].map((r) => of(r, 'finished').map((e) => (e as { outcome: string }).outcome)),
          [['ok'], ['ok']],
        );
        assert.equal(pool.stats().chained - chainedBefore, 2, 'after the retry, b and c followed a again: both ran in its batch');
      } finally {
        await rt.shutdown();
      }
    });
  }
});
