/**
 * Chaining down a long chain of waiting dependents: the orchestrator hands them over from a
 * worklist, not by recursion, so a chain thousands of levels deep follows its producer without
 * running out of stack. Its own file: thousands of tasks take a few seconds, which the other
 * chaining tests (chain-paths.test.ts) should not wait for. Against the scripted backend with
 * the chaining capability (test/fakes/scripted-backend.ts).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { remote, Runtime, WorkerCrashedError } from 'volley';
import { fast, scriptedBackend } from '../fakes/scripted-backend.js';

const deepLeaf = remote(function deepLeaf(x: number): number {
  return x;
});
const deepInc = remote(function deepInc(x: number): number {
  return x + 1;
});

it("a chain of 5,000 waiting levels follows its producer's second run, level after level", async () => {
  // About twice the depth at which handing them over by recursion overflows Node's default stack.
  const LEVELS = 5000;
  const f = scriptedBackend(
    (env) => {
      if (env.fn === 'deepLeaf' && env.attempt === undefined) throw new WorkerCrashedError(env.fn, env.taskId, 'exit code 137');
    },
    undefined,
    { chains: () => true },
  );
  const rt = new Runtime({ ...fast, maxConcurrency: Number.POSITIVE_INFINITY }, { backend: f.backend });
  try {
    await rt.ready();
    let ref = rt.remote(deepLeaf, 0);
    for (let i = 0; i < LEVELS; i++) ref = rt.remote(deepInc, ref);
    // The root crashed: every level was handed back, and all follow the root's second run.
    assert.equal(await rt.get(ref), LEVELS);
    assert.equal(f.invocations.notChained, LEVELS);
    assert.equal(f.invocations.followers, LEVELS);
    assert.equal(f.invoked.length, LEVELS + 2, 'each level ran once');
  } finally {
    await rt.shutdown();
  }
});
