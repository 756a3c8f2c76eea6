/**
 * The S3 store and the Lambda invoker over the wire: the store against s3rver, the invoker
 * against small HTTP servers speaking Lambda's Invoke API that throttle, fail or time out on
 * purpose (serverless-offline cannot be made to), and a whole runtime's cleanup.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { ObjectStoreError, TaskError, TaskTimeoutError, WorkerCrashedError } from 'volley';
import { makeLambdaClient, makeS3Client } from '../../sdk/aws/clients.js';
import { LambdaInvoker } from '../../sdk/aws/lambda-invoker.js';
import { S3Store } from '../../sdk/aws/s3-store.js';
import { bundleWorker } from '../../infra/bundle.js';
import { startS3rver, projectRoot } from '../../infra/emulators.js';
import { PROTOCOL_VERSION, type TaskEnvelope } from '../../sdk/protocol.js';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const BUCKET = 'volley-wire';
const CLI_BUCKET = 'volley-cli';
let s3rver: Awaited<ReturnType<typeof startS3rver>>;
let store: S3Store;
/** What the store's client sent, as `<command> <key> [if-none-match]`, recorded on the wire side of the SDK. */
let sent: string[] = [];

before(async () => {
  s3rver = await startS3rver({ buckets: [BUCKET, CLI_BUCKET] });
  const client = makeS3Client({ region: 'us-east-1', endpoint: s3rver.endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxSockets: 8, forcePathStyle: true });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { headers?: Record<string, string> };
      const input = args.input as { Key?: string };
      sent.push([context.commandName, input.Key, req.headers?.['if-none-match']].filter(Boolean).join(' '));
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordRequests' },
  );
  store = new S3Store(client, BUCKET, { multipartThresholdBytes: 5 * 1024 * 1024, partSizeBytes: 5 * 1024 * 1024 });
});
after(async () => {
  store?.client.destroy();
  await s3rver?.stop();
});

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('S3 store on s3rver', () => {
  it('round-trips small objects in one PUT and large ones in parts, byte for byte, both written once', async () => {
    const small = bytes(1000, 1);
    const large = bytes(12 * 1024 * 1024 + 7, 2); // three parts through lib-storage
    sent = [];
    await store.put('volley/jobs/j1/small', small);
    await store.put('volley/jobs/j1/large', large);
    assert.deepEqual(sent, [
      'PutObjectCommand volley/jobs/j1/small *',
      'CreateMultipartUploadCommand volley/jobs/j1/large',
      'UploadPartCommand volley/jobs/j1/large',
      'UploadPartCommand volley/jobs/j1/large',
      'UploadPartCommand volley/jobs/j1/large',
      'CompleteMultipartUploadCommand volley/jobs/j1/large *',
    ]);
    assert.deepEqual(await store.get('volley/jobs/j1/small'), small);
    const back = await store.get('volley/jobs/j1/large');
    assert.equal(back.byteLength, large.byteLength);
    assert.ok(Buffer.from(back).equals(Buffer.from(large)));
  });

  // s3rver itself ignores If-None-Match; the emulator adds S3's conditional write in front of it
  // (infra/s3rver-process.ts), so a second write of a key is refused there as on S3.
  it('keeps the first write of a key: a second conditional write is refused (412) and changes nothing', async () => {
    await store.put('volley/jobs/j1/result', bytes(3000, 3));
    await store.put('volley/jobs/j1/result', bytes(2000, 4));
    assert.deepEqual(await store.get('volley/jobs/j1/result'), bytes(3000, 3));
    const racing = await Promise.all([5, 6, 7, 8].map((n) => store.create('volley/jobs/j1/raced', bytes(100, n))));
    assert.equal(racing.filter(Boolean).length, 1, `exactly one of four racing writes creates the key: ${racing}`);
  });

  it("removes one job's objects and leaves the others", async () => {
    for (let i = 0; i < 5; i++) await store.put(`volley/jobs/j2/o${i}`, bytes(10, i));
    await store.put('volley/jobs/j3/keep', bytes(10, 9));
    assert.equal(await store.deletePrefix('volley/jobs/j2/'), 5);
    const left = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'volley/jobs/' }));
    assert.ok(!(left.Contents ?? []).some((o) => o.Key!.startsWith('volley/jobs/j2/')));
    assert.ok((left.Contents ?? []).some((o) => o.Key === 'volley/jobs/j3/keep'));
  });

  it('deletes freed objects by key, exactly those', async () => {
    for (const k of ['o1', 'o10', 'o2']) await store.put(`volley/jobs/j4/${k}`, bytes(10, 1));
    await store.delete(['volley/jobs/j4/o1', 'volley/jobs/j4/never-written']);
    const left = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'volley/jobs/j4/' }));
    assert.deepEqual((left.Contents ?? []).map((o) => o.Key).sort(), ['volley/jobs/j4/o10', 'volley/jobs/j4/o2']);
  });

  it('a missing object is an ObjectStoreError that says why it may be gone', async () => {
    await assert.rejects(store.get('volley/jobs/none/x'), (e: unknown) => e instanceof ObjectStoreError && /lifecycle expiry/.test(e.message) && e.key === 'volley/jobs/none/x');
  });
});

/** Runs `volley <args>` (the built CLI) and resolves with its exit code and output. */
function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(projectRoot(), 'dist/infra/bin.js'), ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

describe('volley cleanup against s3rver', () => {
  it("removes one job's objects with --job, then everything volley wrote with --all", async () => {
    const other = new S3Store(store.client, CLI_BUCKET, { multipartThresholdBytes: 5 * 1024 * 1024 });
    for (const k of ['volley/jobs/a/1', 'volley/jobs/a/2', 'volley/jobs/b/1', 'not-volley/keep']) await other.put(k, bytes(10, 1));
    const env = { VOLLEY_S3_ENDPOINT: s3rver.endpoint, VOLLEY_LAMBDA_ENDPOINT: 'http://127.0.0.1:9', VOLLEY_BUCKET: CLI_BUCKET };
    const keys = async () => ((await store.client.send(new ListObjectsV2Command({ Bucket: CLI_BUCKET }))).Contents ?? []).map((o) => o.Key!).sort();
    const one = await cli(['cleanup', '--target', 'emulator', '--job', 'a'], env);
    assert.equal(one.code, 0, one.out);
    assert.match(one.out, /removed 2 object\(s\) under s3:\/\/volley-cli\/volley\/jobs\/a\//);
    assert.deepEqual(await keys(), ['not-volley/keep', 'volley/jobs/b/1']);
    const all = await cli(['cleanup', '--target', 'emulator', '--all'], env);
    assert.equal(all.code, 0, all.out);
    assert.match(all.out, /removed 1 object\(s\) under s3:\/\/volley-cli\/volley\//);
    assert.deepEqual(await keys(), ['not-volley/keep'], 'only what volley wrote');
    const missing = await cli(['cleanup', '--target', 'emulator'], env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.out, /volley cleanup needs one of --job ID .* or --all/);
  });

  it('removes a prefix of more than 1,000 objects (S3 lists at most 1,000 per page)', async () => {
    const many = Array.from({ length: 1050 }, (_, i) => `volley/jobs/many/o${i}`);
    const client = store.client;
    for (let i = 0; i < many.length; i += 50) {
      await Promise.all(many.slice(i, i + 50).map((Key) => client.send(new PutObjectCommand({ Bucket: CLI_BUCKET, Key, Body: 'x' }))));
    }
    await client.send(new PutObjectCommand({ Bucket: CLI_BUCKET, Key: 'volley/jobs/other/keep', Body: 'x' }));
    const other = new S3Store(client, CLI_BUCKET, { multipartThresholdBytes: 5 * 1024 * 1024 });
    assert.equal(await other.deletePrefix('volley/jobs/many/'), 1050);
    const left = ((await client.send(new ListObjectsV2Command({ Bucket: CLI_BUCKET, Prefix: 'volley/jobs/' }))).Contents ?? []).map((o) => o.Key);
    assert.deepEqual(left, ['volley/jobs/other/keep']);
    await other.delete(['volley/jobs/other/keep']);
  });
});

/** A local endpoint of the Lambda Invoke API whose answers the test scripts. */
async function fakeLambda(
  answer: (n: number, body: string, req: IncomingMessage) => { status: number; headers?: Record<string, string>; body: string },
): Promise<{ endpoint: string; server: Server; calls: string[] }> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      calls.push(body);
      const a = answer(calls.length, body, req);
      res.writeHead(a.status, { 'content-type': 'application/json', 'x-amzn-requestid': `req-${calls.length}`, ...a.headers });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server, calls };
}

function envelope(id: string, argBytes = new Uint8Array([0, 1])): TaskEnvelope {
  return { v: PROTOCOL_VERSION, kind: 'task', job: 'j', taskId: id, fn: 'work', args: { kind: 'inline', bytes: argBytes }, deps: {}, resultKey: `volley/jobs/j/${id}`, inlineLimit: 100 };
}

const ok = (taskId: string) => JSON.stringify({ v: PROTOCOL_VERSION, kind: 'value', taskId, bytes: { $b64: 'AAE=' }, timing: { fetchMs: 0, runMs: 0, storeMs: 0 } });

function invokerFor(endpoint: string, extra: Partial<ConstructorParameters<typeof LambdaInvoker>[2]> = {}): LambdaInvoker {
  const client = makeLambdaClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxSockets: 4 });
  return new LambdaInvoker(client, store, { functionName: 'volley-test-worker', invokeGraceMs: 2000, baseDelayMs: 5, maxDelayMs: 20, giveUpMs: 5000, ownsClient: true, ...extra });
}

describe('Lambda invoker over HTTP', () => {
  it('retries a throttled invocation until it runs, sending the task once more per 429 and no more', async () => {
    const fake = await fakeLambda((n) =>
      n <= 3
        ? { status: 429, headers: { 'x-amzn-errortype': 'TooManyRequestsException' }, body: JSON.stringify({ message: 'Rate Exceeded.', Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' }) }
        : { status: 200, body: ok('t1') },
    );
    const inv = invokerFor(fake.endpoint);
    try {
      const res = await inv.invoke(envelope('t1'), { timeoutMs: 5000, memoryMB: 1024 });
      assert.equal(res.kind, 'value');
      assert.equal(fake.calls.length, 4);
      assert.ok(
        fake.calls.every((c) => c === fake.calls[0]),
        'every attempt carries the same task',
      );
    } finally {
      await inv.close();
      fake.server.close();
    }
  });

  it('reports FunctionError timeouts, out-of-memory and crashes as TaskError subclasses naming the function and its logs', async () => {
    const answers = [
      { errorMessage: '2024-01-01T00:00:00.000Z abc Task timed out after 3.00 seconds' },
      { errorType: 'Runtime.OutOfMemory', errorMessage: 'RequestId: abc Error: Runtime exited with error: signal: killed' },
      { errorType: 'Runtime.ImportModuleError', errorMessage: "Error: Cannot find module 'worker'" },
    ];
    const fake = await fakeLambda((n) => ({ status: 200, headers: { 'x-amz-function-error': 'Unhandled' }, body: JSON.stringify(answers[n - 1]) }));
    const inv = invokerFor(fake.endpoint);
    try {
      const timeout = await inv.invoke(envelope('a'), { timeoutMs: 3000, memoryMB: 1024 }).catch((e: unknown) => e);
      assert.ok(timeout instanceof TaskTimeoutError, String(timeout));
      assert.match(timeout.logs ?? '', /\/aws\/lambda\/volley-test-worker, request id req-1/);
      // Lambda ended the invocation at the function's timeout (3 s), not the task's own (3000 ms here too): said so, with the fix.
      assert.equal(timeout.invocationMs, 3000);
      assert.match(
        timeout.message,
        /^Task work \(a\) was stopped when its Lambda invocation ran out of time, before its own timeout of 3000 ms: the invocation had 3 s in all, the function's timeout \(timeout in serverless\.yml\)\. Fix: deploy the function with a longer timeout/,
      );
      const oom = await inv.invoke(envelope('b'), { timeoutMs: 3000, memoryMB: 1024 }).catch((e: unknown) => e);
      assert.ok(oom instanceof WorkerCrashedError, String(oom));
      assert.match(oom.message, /volley-test-worker ran out of memory.*memoryMB/);
      const crash = await inv.invoke(envelope('c'), { timeoutMs: 3000, memoryMB: 1024 }).catch((e: unknown) => e);
      assert.ok(crash instanceof WorkerCrashedError && crash.fault === 'infrastructure');
      assert.match(crash.message, /FunctionError Unhandled: Runtime.ImportModuleError/);
    } finally {
      await inv.close();
      fake.server.close();
    }
  });

  it("keeps the worker's word that the invocation's end stopped the task, before its own timeout", async () => {
    const stopped = (taskId: string, invocationMs?: number) =>
      JSON.stringify({
        v: PROTOCOL_VERSION,
        kind: 'error',
        taskId,
        fault: 'infrastructure',
        error: { name: 'TaskTimeoutError', message: 'stopped', code: 'TASK_TIMEOUT', retryable: true, ...(invocationMs !== undefined ? { invocationMs } : {}) },
        timing: { fetchMs: 0, runMs: 0, storeMs: 0 },
      });
    const fake = await fakeLambda((n) => ({ status: 200, body: n === 1 ? stopped('a', 60_000) : stopped('b') }));
    const inv = invokerFor(fake.endpoint);
    try {
      const byInvocation = await inv.invoke(envelope('a'), { timeoutMs: 120_000, memoryMB: 1024 }).catch((e: unknown) => e);
      assert.ok(byInvocation instanceof TaskTimeoutError, String(byInvocation));
      assert.equal(byInvocation.invocationMs, 60_000);
      assert.match(
        byInvocation.message,
        /^Task work \(a\) was stopped when its Lambda invocation ran out of time, before its own timeout of 120000 ms: the invocation had 60 s in all, the function's timeout \(timeout in serverless\.yml\)\. Fix: deploy the function with a longer timeout than the task's \(npx volley deploy --timeout S, at most 900 s\), or make the task shorter/,
      );
      const byItsOwn = await inv.invoke(envelope('b'), { timeoutMs: 2000, memoryMB: 1024 }).catch((e: unknown) => e);
      assert.ok(byItsOwn instanceof TaskTimeoutError, String(byItsOwn));
      assert.equal(byItsOwn.invocationMs, undefined);
      assert.match(byItsOwn.message, /^Task work \(b\) timed out after 2000 ms and was stopped; raise its timeout with work\.options\(\{ timeoutMs \}\)/);
    } finally {
      await inv.close();
      fake.server.close();
    }
  });

  it('stops waiting exactly timeoutMs + grace after the call when the function never answers', async (t) => {
    const fake = await fakeLambda(() => ({ status: 200, body: ok('x') }));
    fake.server.removeAllListeners('request');
    const arrived = new Promise<void>((r) => fake.server.on('request', () => r())); // never answers
    const inv = invokerFor(fake.endpoint, { invokeGraceMs: 100 });
    // The deadline's timer is faked: the test moves the clock, so nothing depends on how fast
    // this machine is, and a missing deadline fails the test instead of hanging it.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let outcome: unknown = 'pending';
      const call = inv.invoke(envelope('slow'), { timeoutMs: 200, memoryMB: 1024 }).then(
        () => (outcome = 'answered'),
        (e: unknown) => (outcome = e),
      );
      await arrived;
      t.mock.timers.tick(299);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      assert.equal(outcome, 'pending', 'still waiting 1 ms before the deadline');
      t.mock.timers.tick(1);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      const state = (): unknown => outcome;
      assert.notEqual(state(), 'pending', 'given up at the deadline');
      const err = await call;
      assert.ok(err instanceof TaskTimeoutError, `expected TaskTimeoutError, got ${String(err)}`);
      assert.equal(err.timeoutMs, 200);
      assert.match(err.logs ?? '', /no answer from Lambda function volley-test-worker within 300 ms/);
    } finally {
      t.mock.timers.reset();
      await inv.close();
      fake.server.closeAllConnections();
      fake.server.close();
    }
  });

  it('never sends more than the payload limit: large inline values move to the store', async () => {
    const fake = await fakeLambda(() => ({ status: 200, body: ok('big') }));
    const inv = invokerFor(fake.endpoint, { payloadLimitBytes: 200_000 });
    try {
      const env = envelope('big', bytes(90_000, 5));
      env.deps = { d1: { kind: 'inline', bytes: bytes(90_000, 6) }, d2: { kind: 'inline', bytes: bytes(10, 7) } };
      await inv.invoke(env, { timeoutMs: 1000, memoryMB: 1024 });
      const sent = JSON.parse(fake.calls[0]!) as { task: { args: { kind: string; key?: string }; deps: Record<string, { kind: string; key?: string }> } };
      assert.ok(fake.calls[0]!.length <= 200_000);
      const stored = [sent.task.args, ...Object.values(sent.task.deps)].filter((p) => p.kind === 'stored');
      assert.ok(stored.length >= 1);
      assert.equal(sent.task.deps.d2!.kind, 'inline');
      for (const p of stored) assert.ok((await store.get(p.key!)).byteLength === 90_000);
    } finally {
      await inv.close();
      fake.server.close();
    }
  });

  it('sends what the tasks of a batch share once, and each task whole when they differ; each result takes the batch worker', async () => {
    const fake = await fakeLambda((_n, body) => {
      const req = JSON.parse(body) as { kind: string; task?: { taskId: string }; tasks?: Array<{ task: { taskId: string } }> };
      const result = (taskId: string) => JSON.parse(ok(taskId)) as Record<string, unknown>;
      if (req.kind === 'invoke') return { status: 200, body: ok(req.task!.taskId) };
      return { status: 200, body: JSON.stringify({ v: PROTOCOL_VERSION, kind: 'batch', results: req.tasks!.map((t) => result(t.task.taskId)), worker: { id: 'sandbox-7', memoryMB: 1024 } }) };
    });
    const inv = invokerFor(fake.endpoint, { maxInvocations: 1 });
    const opts = { timeoutMs: 5000, memoryMB: 1024 };
    try {
      // The function's first task goes alone; measured short, the next two share an invocation.
      await inv.invoke(envelope('t1'), opts);
      const pair = await Promise.all([inv.invoke(envelope('t2'), opts), inv.invoke(envelope('t3'), opts)]);
      assert.equal(fake.calls.length, 2, 'one invocation for the two');
      const batch = JSON.parse(fake.calls[1]!) as { shared: Record<string, unknown>; tasks: Array<Record<string, unknown>> };
      assert.deepEqual(batch.shared, { task: { v: PROTOCOL_VERSION, kind: 'task', job: 'j', inlineLimit: 100 }, timeoutMs: 5000, memoryMB: 1024, resultKeyPrefix: 'volley/jobs/j/' });
      assert.deepEqual(batch.tasks, [
        { task: { taskId: 't2', fn: 'work', args: { kind: 'inline', bytes: { $b64: 'AAE=' } }, deps: {} } },
        { task: { taskId: 't3', fn: 'work', args: { kind: 'inline', bytes: { $b64: 'AAE=' } }, deps: {} } },
      ]);
      assert.deepEqual(
        pair.map((r) => r.worker),
        [
          { id: 'sandbox-7', memoryMB: 1024 },
          { id: 'sandbox-7', memoryMB: 1024 },
        ],
      );
      // Different timeouts: nothing is shared, each item is the task as it would go alone.
      await Promise.all([inv.invoke(envelope('t4'), opts), inv.invoke(envelope('t5'), { ...opts, timeoutMs: 6000 })]);
      const mixed = JSON.parse(fake.calls[2]!) as { shared?: unknown; tasks: Array<{ task: Record<string, unknown>; timeoutMs: number }> };
      assert.equal(mixed.shared, undefined);
      assert.deepEqual(
        mixed.tasks.map((t) => [t.task.resultKey, t.task.job, t.timeoutMs]),
        [
          ['volley/jobs/j/t4', 'j', 5000],
          ['volley/jobs/j/t5', 'j', 6000],
        ],
      );
    } finally {
      await inv.close();
      fake.server.close();
    }
  });

  it('a call to a function that does not exist names the fix', async () => {
    const fake = await fakeLambda(() => ({ status: 404, headers: { 'x-amzn-errortype': 'ResourceNotFoundException' }, body: JSON.stringify({ Type: 'User', Message: 'Function not found: x' }) }));
    const inv = invokerFor(fake.endpoint);
    try {
      await assert.rejects(inv.invoke(envelope('nf'), { timeoutMs: 1000, memoryMB: 1024 }), (e: unknown) => e instanceof TaskError && /npx volley deploy/.test(e.message));
    } finally {
      await inv.close();
      fake.server.close();
    }
  });
});

describe('worker bundle', () => {
  it('is deterministic: the same sources give the same bytes', async () => {
    const root = projectRoot();
    const dirs = ['.volley/bundle-a', '.volley/bundle-b'];
    try {
      for (const d of dirs) await bundleWorker({ projectRoot: root, outdir: join(root, d) });
      for (const f of ['worker.mjs', 'worker.mjs.map']) {
        assert.ok(readFileSync(join(root, dirs[0]!, f)).equals(readFileSync(join(root, dirs[1]!, f))), `${f} differs between two builds`);
      }
      const map = readFileSync(join(root, dirs[0]!, 'worker.mjs.map'), 'utf8');
      assert.ok(!map.includes(root), 'the source map holds no absolute paths');
      assert.match(readFileSync(join(root, dirs[0]!, 'worker.mjs'), 'utf8'), /"sleepTask"/, 'task names are kept');
    } finally {
      for (const d of dirs) rmSync(join(root, d), { recursive: true, force: true });
    }
  });
});
