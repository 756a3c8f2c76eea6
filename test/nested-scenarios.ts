/**
 * Nested-task scenarios every target must pass, written once: tasks that start tasks and wait
 * for them, return refs, use put/get/wait inside, hit the depth limit, and fail in a child.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TaskError, type Runtime } from 'volley';
import { chain, grandparentOfBoom, makeRefs, parentOfBoom, recurse, returnFailing, returnRef, sumRefs, treeSum, useApi } from './fixtures/nested-tasks.js';

export interface NestedScenarioOptions {
  tier: string;
  /** Starts a runtime whose maxTaskDepth is `maxTaskDepth`. Called once; the scenarios shut it down. */
  start: () => Promise<Runtime>;
  /** The depth limit the runtime was started with. */
  maxTaskDepth: number;
  /** How deep the recursion scenarios go (more than the embedded runtime's maxWorkers there). */
  depth: number;
}

/** The chain of `cause`s of an error, as `name: message` lines. */
function causes(err: unknown): Error[] {
  const out: Error[] = [];
  for (let e = err as Error | undefined; e && out.length < 20; e = e.cause as Error | undefined) out.push(e);
  return out;
}

export function defineNestedScenarios(o: NestedScenarioOptions): void {
  describe(`nested tasks on ${o.tier}`, () => {
    let rt: Runtime;
    before(async () => {
      rt = await o.start();
    });
    after(async () => {
      await rt?.shutdown();
    });

    it(`a chain of tasks ${o.depth} deep, each waiting for the next, completes`, async () => {
      assert.equal(await rt.get(rt.remote(chain, o.depth), { timeoutMs: 120_000 }), o.depth);
    });

    it('a recursive divide-and-conquer sum matches the plain sum', async () => {
      const xs = Array.from({ length: 64 }, (_, i) => (i * 7) % 13);
      // Leaves of 8 numbers: 8 leaves, 7 tasks waiting on their halves, 4 levels.
      assert.equal(
        await rt.get(rt.remote(treeSum, xs, 8), { timeoutMs: 120_000 }),
        xs.reduce((a, b) => a + b, 0),
      );
    });

    it('refs a task returns inside a structure are read as values, by get and by a dependent task', async () => {
      const ref = rt.remote(makeRefs, 4);
      const v = await rt.get(ref);
      assert.deepEqual(v.squares, [0, 1, 4, 9]);
      assert.ok(v.big instanceof Float64Array);
      assert.equal(v.big.length, 40_000);
      assert.equal(v.big[123], 1.5);
      assert.deepEqual(v.again, [0]);
      // The same object passed on as an argument: the dependent sees values too.
      assert.equal(await rt.get(rt.remote(sumRefs, ref)), 14 + 60_000 + 0);
    });

    it('a task may return the ref of a child that has not finished yet', async () => {
      assert.equal(await rt.get(rt.remote(returnRef, 12)), 144);
    });

    it('put, wait and get work inside a task', async () => {
      assert.deepEqual(await rt.get(rt.remote(useApi, 5)), { first: 10, ready: 5, values: [0, 1, 4, 9, 16], big: 60_000 });
    });

    it(`a recursion without a base case stops at maxTaskDepth (${o.maxTaskDepth}) with a TaskDepthError in the cause chain`, async () => {
      const err = await rt.get(rt.remote(recurse, 0), { timeoutMs: 120_000 }).then(
        () => assert.fail('the runaway recursion returned'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof TaskError, String(err));
      // One TaskError per level: the driver's task, then maxTaskDepth nested ones; the deepest could not start another.
      const levels = causes(err).filter((e): e is TaskError => e instanceof TaskError);
      assert.equal(levels.length, o.maxTaskDepth + 1, levels.map((e) => e.taskId).join(' <- '));
      const deepest = levels.at(-1)!;
      assert.equal(deepest.remote?.name, 'TaskDepthError');
      assert.equal(deepest.remote?.code, 'TASK_DEPTH');
      assert.match(deepest.remote!.message, new RegExp(`deeper than maxTaskDepth \\(${o.maxTaskDepth}\\)`));
      // The top error names the failure at the bottom, once.
      assert.match((err as Error).message, /TaskDepthError: .*maxTaskDepth/);
      assert.equal((err as Error).message.split('TaskDepthError').length, 2, (err as Error).message);
    });

    it("a child's error reaches the parent's caller with the cause chain: grandparent <- parent <- child", async () => {
      const err = await rt.get(rt.remote(grandparentOfBoom, 'deep')).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
      const c = causes(err);
      assert.ok(err instanceof TaskError);
      assert.deepEqual(
        c.filter((e) => e instanceof TaskError).map((e) => (e as TaskError).functionName),
        ['grandparentOfBoom', 'parentOfBoom', 'boom'],
      );
      const child = c[2] as TaskError;
      assert.equal(child.remote?.name, 'RangeError');
      assert.equal(child.remote?.message, 'boom: deep');
      assert.equal(child.fault, 'user');
      assert.match((err as Error).message, /boom: deep/);

      const direct = await rt.get(rt.remote(parentOfBoom, 'near')).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e as TaskError,
      );
      assert.equal((direct.cause as TaskError).functionName, 'boom');
    });

    it("get of a task that returned a failed child's ref fails with the child's error", async () => {
      const err = await rt.get(rt.remote(returnFailing)).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e as TaskError,
      );
      assert.equal(err.functionName, 'returnFailing');
      assert.equal((err.cause as TaskError).functionName, 'boom');
      assert.equal((err.cause as TaskError).remote?.message, 'boom: returned');
    });
  });
}
