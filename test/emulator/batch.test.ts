/**
 * Short tasks share Lambda invocations on the emulator tier (real serverless-offline + s3rver):
 * the invocations are counted where the driver sends them (a middleware on the Lambda client,
 * one count per Invoke request on the wire), and every task keeps its own result, error,
 * timeout, retries and cancel. The batch policy's timing limits are set out of reach
 * (`BATCH_LIMITS`): what is asserted is what batching guarantees, not how the policy reads run
 * times measured on a busy machine.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ObjectRef, Runtime, TaskCancelledError, TaskError, TaskTimeoutError } from 'volley';
import { createAwsBackend } from '../../sdk/aws/backend.js';
import { resolveInitOptions } from '../../sdk/options.js';
import { startEmulators, type Emulators } from '../../infra/emulators.js';
import { failIfNegative, inc, nap } from '../fixtures/tasks.js';
import { failOn, mark } from '../fixtures/failure-tasks.js';
import { spin } from '../fixtures/more-tasks.js';

const FIXTURES = ['test/fixtures/tasks.ts', 'test/fixtures/more-tasks.ts', 'test/fixtures/failure-tasks.ts'];

let emu: Emulators | undefined;
before(async () => {
  emu = await startEmulators({ extraTasks: FIXTURES, bucket: 'volley-batch' });
});
after(async () => {
  await emu?.stop();
});

/**
 * Every measured run counts as short and no batch is held to a latency budget: a warm-up run
 * descheduled past the defaults (10 ms, 50 ms) would otherwise keep a function unbatched or
 * split a batch, and the invocation counts would measure the machine's load.
 */
const BATCH_LIMITS = { shortMs: 60_000, latencyBudgetMs: 60_000 };

/** A runtime on the emulators, and how many Invoke requests its driver has sent. */
async function start(maxConcurrency: number): Promise<{ rt: Runtime; invocations: () => number }> {
  const init = { target: 'emulator', aws: emu!.aws, maxConcurrency, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const;
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

/** Runs rounds of 1, 2, 4, ... tasks, so that the function is measured short and its batches grow. */
async function warm<T>(rt: Runtime, call: (i: number) => ObjectRef<T>, rounds = 5): Promise<void> {
  for (let r = 0; r < rounds; r++) await rt.get(Array.from({ length: 2 ** r }, (_, i) => call(i)));
}

describe('short tasks on the emulators share invocations', () => {
  it('answers many short tasks in far fewer invocations than tasks, each with its own result', async () => {
    const { rt, invocations } = await start(4);
    try {
      const n = 400;
      const refs = Array.from({ length: n }, (_, i) => rt.remote(inc, i));
      assert.deepEqual(
        await rt.get(refs),
        Array.from({ length: n }, (_, i) => i + 1),
      );
      const used = invocations();
      assert.ok(used <= n / 8, `${used} invocations for ${n} tasks`);
      // Timing and events stay per task: every task reports its own run.
      assert.equal(rt.stats().get('inc')?.tasks, n);
    } finally {
      await rt.shutdown();
    }
  });

  it('runs a task with a long timeout after short ones in the same invocation, to its own timeout', async () => {
    const { rt, invocations } = await start(1);
    try {
      await warm(rt, (i) => rt.remote(inc, i));
      await warm(rt, () => rt.remote(spin, 0));
      const before = invocations();
      // spin was measured short (no timer involved); this run takes 1.5 s, within its own timeout but past the short tasks'.
      const quick = inc.options({ timeoutMs: 1000 });
      const refs = [rt.remote(quick, 1), rt.remote(quick, 2), rt.remote(quick, 3)];
      const long = rt.remote(spin.options({ timeoutMs: 20_000 }), 1500);
      assert.deepEqual(await rt.get(refs), [2, 3, 4]);
      assert.ok((await rt.get(long)) > 0, 'the long task ran to its end');
      assert.equal(invocations() - before, 1, 'the four tasks went in one invocation, whose budget covers the longest timeout');
    } finally {
      await rt.shutdown();
    }
  });

  it('fails a failing task of a batch alone', async () => {
    const { rt, invocations } = await start(1);
    try {
      await warm(rt, (i) => rt.remote(failIfNegative, i));
      const before = invocations();
      const refs = [1, 2, -5, 3, 4].map((x) => rt.remote(failIfNegative, x));
      const got = await Promise.allSettled(refs.map((r) => rt.get(r)));
      assert.deepEqual(
        got.map((g) => (g.status === 'fulfilled' ? g.value : 'failed')),
        [1, 2, 'failed', 3, 4],
      );
      const err = (got[2] as PromiseRejectedResult).reason as TaskError;
      assert.ok(err instanceof TaskError && err.fault === 'user', String(err));
      assert.equal(err.remote?.name, 'ValidationFailure');
      assert.equal(err.taskId, refs[2]!.id);
      const used = invocations() - before;
      assert.ok(used <= 2, `five tasks in one or two invocations (alone: five): ${used}`);
    } finally {
      await rt.shutdown();
    }
  });

  it('when a task of a batch crashes its worker, runs again only that task: the others keep their results and run once', async () => {
    const { rt, invocations } = await start(1);
    const file = join(tmpdir(), `volley-batch-crash-${process.pid}-${Date.now()}.txt`);
    try {
      await warm(rt, (i) => rt.remote(mark, file, `warm${i}`));
      await warm(rt, () => rt.remote(failOn, [], 'crash'));
      rmSync(file, { force: true });
      const before = invocations();
      const refs = [rt.remote(mark, file, 'a'), rt.remote(mark, file, 'b'), rt.remote(failOn, [1], 'crash'), rt.remote(mark, file, 'c'), rt.remote(mark, file, 'd')];
      assert.deepEqual(await rt.get(refs), ['a', 'b', 2, 'c', 'd'], 'the crashed task succeeded on its second run');
      assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').sort(), ['a', 'b', 'c', 'd'], 'every other task ran exactly once');
      const used = invocations() - before;
      // One batch, the crashed task's second run; at most one more for tasks not started while the task thread was replaced.
      assert.ok(used >= 2 && used <= 3, `${used} invocations`);
      assert.equal(rt.faultCounts.retries, 1);
    } finally {
      await rt.shutdown();
      rmSync(file, { force: true });
    }
  });

  it('when a task of a batch runs past its timeout, keeps the answers of the tasks that finished before it: each task runs once, that one fails alone', async () => {
    const { rt, invocations } = await start(1);
    const file = join(tmpdir(), `volley-batch-timeout-${process.pid}-${Date.now()}.txt`);
    try {
      await warm(rt, (i) => rt.remote(mark, file, `warm${i}`));
      await warm(rt, () => rt.remote(spin, 0));
      rmSync(file, { force: true });
      const before = invocations();
      // spin was measured short, so it shares the marks' batch, third; this run never yields, and its thread is stopped at 1 s.
      const a = rt.remote(mark, file, 'a');
      const b = rt.remote(mark, file, 'b');
      const stuck = rt.remote(spin.options({ timeoutMs: 1000, maxRetries: 0 }), 60_000);
      const c = rt.remote(mark, file, 'c');
      const d = rt.remote(mark, file, 'd');
      assert.deepEqual(await rt.get([a, b, c, d]), ['a', 'b', 'c', 'd']);
      await assert.rejects(rt.get(stuck), (e: unknown) => e instanceof TaskTimeoutError);
      assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').sort(), ['a', 'b', 'c', 'd'], 'every other task ran exactly once');
      const used = invocations() - before;
      assert.ok(used >= 2 && used <= 3, `one batch, then the tasks not started behind the stopped one: ${used} invocations`);
    } finally {
      await rt.shutdown();
      rmSync(file, { force: true });
    }
  });

  it('stops a task of a batch at its timeout when the task before it had a longer one', async () => {
    const { rt } = await start(1);
    try {
      await warm(rt, () => rt.remote(spin, 0));
      // spin was measured short: both go in one batch. The handler looks at the running task while the first one runs (its limit is two minutes);
      // the second starts within the batch's first second and would spin for 5 s past its 300 ms timeout: it is stopped at its own timeout, not when the first one's would have come.
      const first = rt.remote(spin.options({ timeoutMs: 120_000 }), 700);
      const stuck = rt.remote(spin.options({ timeoutMs: 300, maxRetries: 0 }), 5000);
      assert.ok((await rt.get(first)) > 0);
      await assert.rejects(rt.get(stuck), (e: unknown) => e instanceof TaskTimeoutError);
    } finally {
      await rt.shutdown();
    }
  });

  it('cancels a task waiting for an invocation together with others: it never runs, the others do', async () => {
    const { rt, invocations } = await start(1);
    const file = join(tmpdir(), `volley-batch-cancel-${process.pid}-${Date.now()}.txt`);
    try {
      await warm(rt, (i) => rt.remote(mark, file, `warm${i}`));
      rmSync(file, { force: true });
      const before = invocations();
      // The one invocation slot is busy; the marks wait in the invoker for it, to go as one batch.
      const block = rt.remote(nap, 800, 'block');
      const refs = ['m0', 'm1', 'm2', 'm3', 'm4'].map((l) => rt.remote(mark, file, l));
      await new Promise((r) => setTimeout(r, 100));
      rt.cancel(refs[2]!);
      await assert.rejects(rt.get(refs[2]!), (e: unknown) => e instanceof TaskCancelledError);
      assert.deepEqual(await rt.get([refs[0]!, refs[1]!, refs[3]!, refs[4]!]), ['m0', 'm1', 'm3', 'm4']);
      assert.equal(await rt.get(block), 'block after 800 ms');
      assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').sort(), ['m0', 'm1', 'm3', 'm4'], 'the cancelled task never ran');
      const used = invocations() - before;
      // Alone: five. The four marks share one invocation.
      assert.equal(used, 2, `the blocking task, then the four others in one batch: ${used} invocations`);
    } finally {
      await rt.shutdown();
      rmSync(file, { force: true });
    }
  });
});
