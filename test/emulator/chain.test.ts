/**
 * Dependent tasks follow their producers into the same Lambda invocation on the emulator tier
 * (real serverless-offline + s3rver): a tree of short tasks runs in fewer invocations than it
 * has levels (one batch round trip per level without chaining), every task's value is right,
 * and a producer that crashes once is run again before the tasks that take its result.
 * Invocations are counted where the driver sends them (a middleware on the Lambda client).
 * The batch policy's timing limits are set out of reach (`BATCH_LIMITS`): what is asserted is
 * the chaining, not how the policy reads run times measured on a busy machine.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ObjectRef, Runtime, type VolleyEvent } from 'volley';
import { createAwsBackend } from '../../sdk/aws/backend.js';
import { resolveInitOptions } from '../../sdk/options.js';
import { startEmulators, type Emulators } from '../../infra/emulators.js';
import { add } from '../fixtures/tasks.js';
import { dagNode, nodeValue, type NodeSpec } from '../fixtures/failure-tasks.js';

const FIXTURES = ['test/fixtures/tasks.ts', 'test/fixtures/failure-tasks.ts'];

let emu: Emulators | undefined;
before(async () => {
  emu = await startEmulators({ extraTasks: FIXTURES, bucket: 'volley-chain' });
});
after(async () => {
  await emu?.stop();
});

/**
 * Every run counts as short and no batch is held to a latency budget: a warm-up run descheduled
 * past the defaults (10 ms, 50 ms) would otherwise make the policy split the tree by level.
 */
const BATCH_LIMITS = { shortMs: 60_000, latencyBudgetMs: 60_000 };

/** A runtime on the emulators with one invocation at a time, and how many Invoke requests its driver has sent. */
async function start(inlineThresholdBytes?: number): Promise<{ rt: Runtime; invocations: () => number }> {
  const init = { target: 'emulator', aws: emu!.aws, maxConcurrency: 1, retryBaseDelayMs: 5, retryMaxDelayMs: 20, inlineThresholdBytes } as const;
  const backend = await createAwsBackend(resolveInitOptions(init), { batchLimits: BATCH_LIMITS });
  let n = 0;
  backend.invoker.client.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'InvokeCommand') n++;
      return next(args);
    },
    { step: 'initialize', name: 'countInvocations' },
  );
  const rt = await new Runtime(init, { backend }).ready();
  return { rt, invocations: () => n };
}

/** Rounds of 1, 2, 4, ... 128 independent tasks: the function is measured short and its batches may hold 256 tasks. */
async function warm<T>(rt: Runtime, call: (i: number) => ObjectRef<T>): Promise<void> {
  for (let r = 0; r < 8; r++) await rt.get(Array.from({ length: 2 ** r }, (_, i) => call(i)));
}

const LEVELS = 6;

describe('dependent tasks follow their producers into one invocation on the emulators', () => {
  it('sums a tree of 32 inputs (63 tasks, 6 levels) in fewer invocations than levels', async () => {
    const { rt, invocations } = await start();
    try {
      await warm(rt, (i) => rt.remote(add, i, 1));
      const before = invocations();
      const leaves = 2 ** (LEVELS - 1);
      const tree = (lo: number, hi: number): ObjectRef<number> => (hi - lo === 1 ? rt.remote(add, lo, 0) : rt.remote(add, tree(lo, (lo + hi) >>> 1), tree((lo + hi) >>> 1, hi)));
      assert.equal(await rt.get(tree(0, leaves)), (leaves * (leaves - 1)) / 2);
      const used = invocations() - before;
      // Without chaining each level waits for the one below: at least one invocation per level.
      assert.ok(used < LEVELS, `${used} invocations for ${2 * leaves - 1} tasks in ${LEVELS} levels`);
    } finally {
      await rt.shutdown();
    }
  });

  it('runs a producer that crashed its worker again, then its dependents; every task ran to one right value, and only the crashed one twice', async () => {
    // Results over 1 kB go through S3: a follower takes some of its inputs as stored objects.
    const { rt, invocations } = await start(1024);
    const events: VolleyEvent[] = [];
    try {
      await warm(rt, (i) => rt.remote(dagNode, { id: -1 - i, size: 0 }));
      // A tree of dagNodes (ids as in a heap: the root 1, its children 2 and 3); the root's right
      // child crashes its task thread on its first run, after the rest of the tree ran in the same
      // invocation, and the root, which takes its result, is not started then.
      const specs: NodeSpec[] = [];
      const refs: ObjectRef<number | Float64Array>[] = [];
      const want: Array<number | Float64Array> = [];
      const crashing = 3;
      const node = (depth: number, id: number): [ObjectRef<number | Float64Array>, number | Float64Array] => {
        const spec: NodeSpec = { id, size: id % 5 === 0 ? 200 : 0, ...(id === crashing ? { faults: { 1: 'crash' as const } } : {}) };
        const kids = depth === LEVELS - 1 ? [] : [node(depth + 1, 2 * id), node(depth + 1, 2 * id + 1)];
        const ref = rt.remote(dagNode, spec, ...kids.map((k) => k[0]));
        const value = nodeValue(
          spec,
          kids.map((k) => k[1]),
        );
        specs.push(spec);
        refs.push(ref);
        want.push(value);
        return [ref, value];
      };
      const stop = rt.onEvent((e) => events.push(e));
      const before = invocations();
      node(0, 1);
      assert.deepEqual(await rt.get(refs), want, 'every node has its value');
      stop();
      const used = invocations() - before;
      assert.equal(rt.faultCounts.retries, 1, 'one retry: the crashed run');
      const count = (type: VolleyEvent['type']) => events.filter((e) => e.type === type).length;
      assert.equal(count('finished'), refs.length);
      assert.equal(count('retrying'), 1);
      assert.equal(count('dispatched'), refs.length + 1, 'each task dispatched once, the crashed one twice: a follower handed back is no run');
      // Without chaining: one invocation per level at least, and the crashed node's retry.
      assert.ok(used < LEVELS, `${used} invocations for ${refs.length} tasks in ${LEVELS} levels`);
    } finally {
      await rt.shutdown();
    }
  });
});
