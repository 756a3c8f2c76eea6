/**
 * Pure logic of the AWS path: target and option resolution, throttling backoff, the worker's
 * environment and event checks. Fakes only for the clock; no servers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { ConfigError, UsageError } from 'volley';
import { resolveInitOptions } from '../../sdk/options.js';
import { backoffDelay, isThrottle, retryThrottled, type Clock } from '../../sdk/aws/throttle.js';
import { ThrottledError } from '../../sdk/errors.js';
import { readWorkerEnv } from '../../sdk/aws/worker-env.js';
import { createHandler } from '../../sdk/aws/handler.js';
import { PROTOCOL_VERSION } from '../../sdk/protocol.js';
import type { ObjectStore } from '../../sdk/backend.js';

describe('target and aws option resolution', () => {
  it('defaults to local and takes the target from VOLLEY_TARGET', () => {
    assert.equal(resolveInitOptions({}, {}).target, 'local');
    const r = resolveInitOptions({}, { VOLLEY_TARGET: 'aws', AWS_REGION: 'eu-west-1', VOLLEY_FUNCTION_NAME: 'f', VOLLEY_BUCKET: 'b' });
    assert.equal(r.target, 'aws');
    assert.equal(r.aws?.region, 'eu-west-1');
    assert.equal(r.aws?.functionName, 'f');
    assert.equal(r.aws?.bucket, 'b');
    assert.equal(r.aws?.stackName, 'volley-dev');
    assert.equal(r.aws?.s3Endpoint, undefined);
    assert.equal(r.maxConcurrency, 100);
  });

  it('names the valid targets and aws options when given a wrong one', () => {
    assert.throws(
      () => resolveInitOptions({ target: 'lambda' as never }, {}),
      (e: unknown) => e instanceof UsageError && /valid targets are: local, aws, localstack, emulator/.test(e.message),
    );
    assert.throws(
      () => resolveInitOptions({ target: 'aws', aws: { functionname: 'x' } as never }, {}),
      (e: unknown) => e instanceof UsageError && /"functionname"/.test(e.message) && /functionName/.test(e.message),
    );
    assert.throws(
      () => resolveInitOptions({ aws: { bucket: 'b' } }, {}),
      (e: unknown) => e instanceof UsageError && /target is 'local'/.test(e.message),
    );
  });

  it('refuses a client together with a client config', () => {
    const client = new LambdaClient({ region: 'us-east-1' });
    try {
      assert.throws(
        () => resolveInitOptions({ target: 'aws', aws: { lambdaClient: client, lambdaClientConfig: {} } as never }, {}),
        (e: unknown) => e instanceof UsageError && /not both/.test(e.message),
      );
    } finally {
      client.destroy();
    }
  });

  it('localstack: AWS_ENDPOINT_URL or the default endpoint, path-style S3, test credentials', () => {
    const d = resolveInitOptions({ target: 'localstack' }, {}).aws!;
    assert.equal(d.s3Endpoint, 'http://localhost.localstack.cloud:4566');
    assert.equal(d.lambdaEndpoint, 'http://localhost.localstack.cloud:4566');
    assert.equal(d.forcePathStyle, true);
    assert.equal(d.stackName, 'volley-local');
    assert.deepEqual(d.credentials, { accessKeyId: 'test', secretAccessKey: 'test' });
    const e = resolveInitOptions({ target: 'localstack' }, { AWS_ENDPOINT_URL: 'http://127.0.0.1:4566', AWS_ACCESS_KEY_ID: 'k' }).aws!;
    assert.equal(e.s3Endpoint, 'http://127.0.0.1:4566');
    assert.equal(e.credentials, undefined);
  });

  it('emulator: a ConfigError saying how to get the endpoints when they are missing', () => {
    assert.throws(
      () => resolveInitOptions({ target: 'emulator' }, {}),
      (e: unknown) => e instanceof ConfigError && /VOLLEY_LAMBDA_ENDPOINT/.test(e.message) && /startEmulators/.test(e.message),
    );
    const r = resolveInitOptions({ target: 'emulator' }, { VOLLEY_LAMBDA_ENDPOINT: 'http://127.0.0.1:1', VOLLEY_S3_ENDPOINT: 'http://127.0.0.1:2' }).aws!;
    assert.equal(r.functionName, 'volley-emulator-worker');
    assert.deepEqual(r.credentials, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    assert.throws(() => resolveInitOptions({ target: 'emulator', aws: { lambdaEndpoint: 'not a url', s3Endpoint: 'http://x' } }, {}), /must be a URL/);
  });
});

describe('throttling backoff', () => {
  function fakeClock(): Clock & { slept: number[]; t: number } {
    const c = {
      t: 0,
      slept: [] as number[],
      now: () => c.t,
      sleep: async (ms: number) => {
        c.slept.push(ms);
        c.t += ms;
      },
      random: () => 1,
    };
    return c;
  }
  const throttle = Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } });

  it('full jitter, doubling up to the cap', () => {
    const p = { baseDelayMs: 100, maxDelayMs: 1000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, p, () => 0.999999)),
      [99, 199, 399, 799, 999, 999],
    );
    assert.equal(
      backoffDelay(3, p, () => 0),
      0,
    );
  });

  it('recognises throttles by name or status 429', () => {
    assert.ok(isThrottle(throttle));
    assert.ok(isThrottle({ $metadata: { httpStatusCode: 429 } }));
    assert.ok(!isThrottle(new Error('boom')));
  });

  it('retries a throttled call until it goes through, calling it once per attempt', async () => {
    const clock = fakeClock();
    let calls = 0;
    const out = await retryThrottled(
      async () => {
        if (++calls < 4) throw throttle;
        return 'ran once';
      },
      { baseDelayMs: 100, maxDelayMs: 1000, giveUpMs: 60_000 },
      { clock },
    );
    assert.equal(out, 'ran once');
    assert.equal(calls, 4);
    assert.deepEqual(clock.slept, [100, 200, 400]);
  });

  it('passes other failures through at once, and gives up on throttles after giveUpMs', async () => {
    let calls = 0;
    await assert.rejects(
      retryThrottled(
        async () => {
          calls++;
          throw new Error('boom');
        },
        { baseDelayMs: 1, maxDelayMs: 1, giveUpMs: 1000 },
        { clock: fakeClock() },
      ),
      /boom/,
    );
    assert.equal(calls, 1);
    await assert.rejects(
      retryThrottled(
        async () => {
          throw throttle;
        },
        { baseDelayMs: 100, maxDelayMs: 100, giveUpMs: 1000 },
        { clock: fakeClock() },
      ),
      (e: unknown) => e instanceof ThrottledError && e.attempts === 11 && e.cause === throttle,
    );
  });
});

describe('the Lambda worker', () => {
  const noStore: ObjectStore = {
    get: async () => {
      throw new Error('unused');
    },
    put: async () => {},
    deletePrefix: async () => 0,
  };

  it('reads its environment through one helper, with a ConfigError naming a missing variable', () => {
    assert.throws(
      () => readWorkerEnv({}),
      (e: unknown) => e instanceof ConfigError && /VOLLEY_BUCKET/.test(e.message) && /npx volley deploy/.test(e.message),
    );
    const env = readWorkerEnv({ VOLLEY_BUCKET: 'b', AWS_ENDPOINT_URL: 'http://ls:4566', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512', AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/w' });
    assert.equal(env.s3Endpoint, 'http://ls:4566');
    assert.equal(env.memoryMB, 512);
    assert.match(env.logs!, /\/aws\/lambda\/w/);
    assert.throws(() => readWorkerEnv({ VOLLEY_BUCKET: 'b', VOLLEY_MULTIPART_THRESHOLD_BYTES: '10' }), ConfigError);
  });

  it('answers a misconfigured worker, a bad event or a too-large memory request as a task failure, not a FunctionError', async () => {
    const missing = await createHandler({})({ v: PROTOCOL_VERSION, kind: 'invoke', timeoutMs: 10, memoryMB: 128, task: { taskId: 't1' } });
    assert.equal(missing.kind, 'error');
    assert.equal(missing.taskId, 't1');
    assert.equal((missing.error as { name: string }).name, 'ConfigError');

    const h = createHandler({ VOLLEY_BUCKET: 'b', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512', AWS_LAMBDA_FUNCTION_NAME: 'w' }, () => noStore);
    const bad = await h({ v: PROTOCOL_VERSION + 1, kind: 'invoke' });
    assert.equal((bad.error as { name: string }).name, 'ProtocolError');
    assert.match((bad.error as { message: string }).message, /same volley version/);
    const big = await h({ v: PROTOCOL_VERSION, kind: 'invoke', timeoutMs: 10, memoryMB: 2048, task: { taskId: 't2' } });
    assert.match((big.error as { message: string }).message, /asked for 2048 MB but Lambda function w has 512 MB.*--memory 2048/);
  });
});
