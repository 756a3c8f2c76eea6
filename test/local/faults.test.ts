/**
 * Fault injection on the embedded runtime: random task graphs (fast-check) run with worker
 * crashes, timeouts and exceptions (real: the tasks exit their thread or never return), Lambda
 * 429/5xx and connection resets after the task ran (FaultyInvoker), S3 503, NoSuchKey and slow
 * calls (FaultyStore). Every run must give the values the same graph gives in-process, commit
 * each result once, leave nothing in the store after shutdown(), and finish.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { firstOf, runStamp } from '../fixtures/failure-tasks.js';
import { dagArbitrary, runFaultyDag } from '../dag.js';
import { faultyLocalRuntime } from '../fault-harness.js';
import { noFaults } from '../faults.js';

const NO_STORE_FAULTS = { store503: 0, noSuchKey: 0, slow: 0, slowMs: 0 };

describe('fault injection on the embedded runtime', () => {
  it('a connection reset after the task ran runs it twice; the first committed result is the one everyone sees', async () => {
    const counts = noFaults();
    const { rt, invoker, store, inner } = await faultyLocalRuntime(1, { invoker: { throttle: 0, lambda5xx: 0, reset: 1, upToAttempt: 1 }, store: NO_STORE_FAULTS }, counts);
    try {
      const ref = rt.remote(runStamp, 20_000);
      const seen = await rt.get([rt.remote(firstOf, ref), rt.remote(firstOf, ref)]);
      const value = await rt.get(ref);
      assert.equal(invoker.runs.get(ref.id), 2, 'the task really ran twice');
      assert.ok(value[0]! >= 1000 && value[0]! < 2000, `the first run's result (attempt 1) was kept, got ${value[0]}`);
      assert.deepEqual(seen, [value[0], value[0]]);
      assert.deepEqual(store.overCommitted(), []);
      assert.ok(counts.reset >= 1);
    } finally {
      await rt.shutdown();
    }
    assert.deepEqual(inner.keys(), [], 'nothing left after shutdown()');
  });

  it('random graphs with random faults: all correct, each committed once, nothing left, no hang (50 runs)', async () => {
    const totals = noFaults();
    let runs = 0;
    let retries = 0;
    await fc.assert(
      fc.asyncProperty(dagArbitrary({ maxNodes: 8, nodeFaults: ['crash', 'throw', 'crash', 'throw', 'hang'], faultRate: 0.08 }), async (c) => {
        runs++;
        const counts = noFaults();
        const faults = {
          invoker: { throttle: 0.05, lambda5xx: 0.05, reset: 0.08, upToAttempt: 3 },
          store: { store503: 0.05, noSuchKey: 0.1, slow: 0.1, slowMs: 5 },
        };
        const { rt, store, inner, invoker } = await faultyLocalRuntime(c.seed, faults, counts);
        const outcome = await runFaultyDag(rt, c, { invoker, counts, totals }, 20_000, 400);
        retries += outcome.retries;
        assert.equal(outcome.hung, false, 'the run finished');
        assert.deepEqual(outcome.wrong, []);
        assert.deepEqual(store.overCommitted(), [], 'each result committed once');
        assert.deepEqual(inner.keys(), [], 'nothing left in the store after shutdown()');
      }),
      // A fixed seed: the same 50 graphs in every CI run (npm run soak draws new ones).
      { numRuns: 50, seed: 20261126, endOnFailure: true, includeErrorInReport: true },
    );
    const injected = Object.values(totals).reduce((a, b) => a + b, 0);
    console.log(`fault injection: ${runs} runs, ${injected} faults injected ${JSON.stringify(totals)}, ${retries} retries`);
    // Every kind of fault was met (the generator's rates make each near certain over 50 runs).
    for (const [kind, n] of Object.entries(totals)) assert.ok(n > 0, `no ${kind} fault was injected: ${JSON.stringify(totals)}`);
  });
});
