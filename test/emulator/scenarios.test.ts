/**
 * The emulator tier: the shared scenarios through the real Lambda Invoke and S3 wire
 * protocols. The harness bundles the worker (default task modules + the test fixtures) with
 * the real bundler, starts s3rver and serverless-offline (osls) from the real serverless.yml
 * on free loopback ports, and stops both afterwards.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Runtime, type TaskFinishedEvent, TaskTimeoutError } from 'volley';
import { makeS3Client } from '../../sdk/aws/clients.js';
import { startEmulators, type Emulators } from '../../infra/emulators.js';
import { makeRefs } from '../fixtures/nested-tasks.js';
import { add, describe as describeValue, filled, nap } from '../fixtures/tasks.js';
import { shout, spin } from '../fixtures/more-tasks.js';
import { defineNestedScenarios } from '../nested-scenarios.js';
import { defineScenarios } from '../scenarios.js';
import { defineFaultScenarios } from './faults.js';
import { defineActorScenarios } from '../actor-scenarios.js';
import { Counter } from '../fixtures/actors.js';
import type { Backend } from '../../sdk/backend.js';
import { resolveInitOptions } from '../../sdk/options.js';
import { createBackend } from '../../sdk/targets.js';

export const FIXTURES = ['test/fixtures/tasks.ts', 'test/fixtures/more-tasks.ts', 'test/fixtures/nested-tasks.ts', 'test/fixtures/failure-tasks.ts', 'test/fixtures/actors.ts'];

let emu: Emulators | undefined;
before(async () => {
  emu = await startEmulators({ extraTasks: FIXTURES, bucket: 'volley-scenarios' });
});
after(async () => {
  await emu?.stop();
});

/**
 * serverless-offline starts a worker thread per concurrent invocation, each loading the bundle;
 * on a two-core machine sixteen cold starts take seconds. Warm sixteen first, as Lambda's
 * provisioned concurrency would, so the scenarios measure fan-out rather than cold starts.
 */
async function warmRuntime(): Promise<Runtime> {
  const rt = await new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 16 }).ready();
  await rt.get(Array.from({ length: 16 }, (_, i) => rt.remote(nap, 300, `warm${i}`)));
  return rt;
}

defineFaultScenarios(() => emu!);

defineScenarios({
  tier: 'the emulators (serverless-offline + s3rver)',
  start: warmRuntime,
  matrixSize: 120,
  sleepScale: 0.5,
  // serverless-offline runs the handler on this machine.
  sharedDir: tmpdir(),
});

// Tasks that start tasks invoke the function themselves: nested invocations call back into serverless-offline.
defineNestedScenarios({
  tier: 'the emulators (serverless-offline + s3rver)',
  start: () => new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 16, maxTaskDepth: 3 }).ready(),
  maxTaskDepth: 3,
  depth: 3,
});

describe('a job on the emulators', () => {
  it('keeps large values in the bucket under the job prefix and removes them at shutdown', async () => {
    const rt = await new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 4 }).ready();
    const s3 = makeS3Client({ region: 'us-east-1', endpoint: emu!.aws.s3Endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxSockets: 2, forcePathStyle: true });
    const list = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: emu!.aws.bucket, Prefix: `volley/jobs/${rt.jobId}/${rt.runId}/` }))).Contents ?? []).map((o) => o.Key!);
    try {
      const big = rt.put(new Float64Array(100_000).fill(2));
      const out = rt.remote(filled, 50_000, 3);
      assert.equal(await rt.get(rt.remote(add, 1, 2)), 3);
      assert.equal((await rt.get(out)).length, 50_000);
      assert.equal((await rt.get(big)).length, 100_000);
      const keys = await list();
      assert.ok(
        keys.some((k) => k.endsWith(big.id)),
        `the put value is in the bucket: ${keys.join(', ')}`,
      );
      assert.ok(
        keys.some((k) => k.endsWith(out.id)),
        'the worker wrote the large result itself',
      );
      await rt.shutdown();
      assert.deepEqual(await list(), []);
    } finally {
      await rt.shutdown();
      s3.destroy();
    }
  });

  it('an object a task made in the worker and returned outlives that task, under the job prefix, until shutdown', async () => {
    const rt = await new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 4 }).ready();
    const s3 = makeS3Client({ region: 'us-east-1', endpoint: emu!.aws.s3Endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxSockets: 2, forcePathStyle: true });
    const list = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: emu!.aws.bucket, Prefix: `volley/jobs/${rt.jobId}/` }))).Contents ?? []).map((o) => o.Key!);
    try {
      const ref = rt.remote(makeRefs, 2);
      await rt.get(ref);
      // The task has returned; the large array it put (under its own task id) is still in the bucket and still readable.
      const keys = await list();
      assert.ok(
        keys.some((k) => k.startsWith(`volley/jobs/${rt.jobId}/${rt.runId}/${ref.id}.`)),
        `the put made inside the task is in the bucket: ${keys.join(', ')}`,
      );
      assert.equal((await rt.get(ref)).big.length, 40_000);
      await rt.shutdown();
      assert.deepEqual(await list(), []);
    } finally {
      await rt.shutdown();
      s3.destroy();
    }
  });
});

describe('a task that never yields, on the emulators', () => {
  it('is stopped at its timeout: its thread is terminated, the answer says so, and the next task runs', { timeout: 60_000 }, async () => {
    // Grace 20 s: only the worker's own deadline can answer within the test's.
    const rt = await new Runtime({ target: 'emulator', aws: { ...emu!.aws, invokeGraceMs: 20_000 }, maxConcurrency: 2 }).ready();
    try {
      const err = await rt.get(rt.remote(spin.options({ timeoutMs: 1000 }), 600_000)).catch((e: unknown) => e);
      assert.ok(err instanceof TaskTimeoutError, String(err));
      assert.equal(err.outcomeUnknown, false, 'the worker stopped the task and said so');
      assert.match(err.message, /timed out after 1000 ms and was stopped/);
      assert.equal(await rt.get(rt.remote(shout, 'after')), 'AFTER!');
    } finally {
      await rt.shutdown();
    }
  });
});

describe('watching a job on the emulators', () => {
  it('names the sandbox that ran each task, with its memory and architecture, and counts the Lambda and S3 usage', async () => {
    const rt = await new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 4, timeline: true, summary: false }).ready();
    const finished: TaskFinishedEvent[] = [];
    rt.onEvent((e) => {
      if (e.type === 'finished') finished.push(e);
    });
    try {
      const out = rt.remote(filled, 50_000, 3); // a 400 KB result: the worker PUTs it
      const seen = rt.remote(describeValue, out); // the worker GETs it
      assert.equal(await rt.get(rt.remote(add, 1, 2)), 3);
      assert.equal(await rt.get(seen), 'Float64Array(50000) sum=150000');
      assert.equal((await rt.get(out)).length, 50_000); // the driver GETs it
      assert.equal(finished.length, 3);
      for (const e of finished) {
        assert.equal(e.outcome, 'ok');
        assert.ok(e.worker && e.worker.id.length > 0, 'the handler names its sandbox');
        assert.equal(e.worker.memoryMB, 1024, "the function's memory, from serverless.yml");
        assert.equal(e.worker.arch, process.arch === 'arm64' ? 'arm64' : 'x86_64');
        assert.ok(Number.isFinite(e.startedAt));
      }
      const cost = await rt.cost();
      assert.equal(cost.estimate, true, 'the emulators are priced as an estimate');
      assert.equal(cost.lambda.requests, 3);
      assert.deepEqual(
        cost.lambda.byMemory.map((b) => b.memoryMB),
        [1024],
      );
      assert.equal(cost.s3.putRequests, 1);
      assert.equal(cost.s3.getRequests, 2);
      // A sandbox's first answer reports its INIT (serverless-offline: its worker thread's start), billed with that run.
      const cold = finished.filter((e) => e.worker!.initMs !== undefined);
      assert.equal(cost.lambda.coldStarts, cold.length);
      for (const e of cold) assert.ok(e.worker!.initMs! > 0 && e.worker!.initMs! < 60_000, `INIT ${e.worker!.initMs} ms`);
      const trace = await rt.timeline();
      const tracks = new Set(trace.traceEvents.filter((e) => e.name === 'thread_name' && e.tid > 0).map((e) => e.args!.name));
      assert.deepEqual(tracks, new Set(finished.map((e) => e.worker!.id)), 'one track per sandbox');
    } finally {
      await rt.shutdown();
    }
  });
});

defineActorScenarios({
  tier: 'the emulators (state in s3rver, one invocation per call)',
  start: () => new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 8 }).ready(),
  calls: 24,
  // A restart after a hang needs a new sandbox: its cold start (the bundle loaded on a busy machine) must fit too.
  hangTimeoutMs: 3000,
});

describe('an actor on the emulators', () => {
  it('does not apply a call twice when its invocation is duplicated', async () => {
    const options = { target: 'emulator' as const, aws: emu!.aws, maxConcurrency: 8 };
    const backend = await createBackend(resolveInitOptions(options));
    const invoked: string[] = [];
    // Every actor call is invoked twice at once, as a retried or duplicated Lambda event would be.
    const duplicating: Backend = {
      ...backend,
      invoker: {
        invoke: (env, o) => {
          if (!env.fn.startsWith('actor:')) return backend.invoker.invoke(env, o);
          invoked.push(env.taskId);
          const [a, b] = [backend.invoker.invoke(env, o), backend.invoker.invoke(env, o)];
          return Promise.all([a, b]).then(([x]) => x);
        },
        close: () => backend.invoker.close(),
      },
    };
    const rt = await new Runtime(options, { backend: duplicating }).ready();
    try {
      const c = rt.actor(Counter, 0);
      const sums = await rt.get(Array.from({ length: 6 }, () => c.add.remote(1)));
      assert.deepEqual(sums, [1, 2, 3, 4, 5, 6]);
      assert.equal(await rt.get(c.read.remote()), 6);
      assert.ok(invoked.length >= 8, `every call was invoked twice (${invoked.length} calls)`);
    } finally {
      await rt.shutdown();
    }
  });
});
