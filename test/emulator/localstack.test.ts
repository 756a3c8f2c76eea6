/**
 * The `localstack` target over the wire, without LocalStack: the shared scenarios with
 * VOLLEY_TARGET=localstack and AWS_ENDPOINT_URL pointing at a LocalStack-shaped edge in front of
 * the emulators (see localstack-edge.ts), and nothing else. The endpoint, credentials, region,
 * path-style S3 and the function and bucket (from the outputs of stack volley-local) are the
 * target's own resolution from that environment.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ConfigError, Runtime } from 'volley';
import { readStackOutputs } from '../../sdk/aws/stack.js';
import { add, nap } from '../fixtures/tasks.js';
import { defineScenarios } from '../scenarios.js';
import { startLocalStackLike, type LocalStackLike } from './localstack-edge.js';

const FIXTURES = ['test/fixtures/tasks.ts', 'test/fixtures/more-tasks.ts'];
let ls: LocalStackLike | undefined;

before(async () => {
  ls = await startLocalStackLike({ extraTasks: FIXTURES });
  // The environment of a user who runs LocalStack and nothing else: no keys, no names.
  for (const k of [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'VOLLEY_FUNCTION_NAME',
    'VOLLEY_BUCKET',
    'VOLLEY_STACK',
    'VOLLEY_LAMBDA_ENDPOINT',
    'VOLLEY_S3_ENDPOINT',
  ]) {
    delete process.env[k];
  }
  process.env.VOLLEY_TARGET = 'localstack';
  process.env.AWS_ENDPOINT_URL = ls.edge.endpoint;
});
after(async () => {
  await ls?.stop();
});

/** As in the emulator tier: sixteen warm workers first, so the scenarios measure fan-out, not serverless-offline's cold starts. */
async function warmRuntime(): Promise<Runtime> {
  const rt = await new Runtime().ready();
  await rt.get(Array.from({ length: 16 }, (_, i) => rt.remote(nap, 300, `warm${i}`)));
  return rt;
}

defineScenarios({
  tier: 'the localstack target (AWS_ENDPOINT_URL = a LocalStack-shaped edge over the emulators)',
  start: warmRuntime,
  matrixSize: 120,
  sleepScale: 0.5,
});

describe('the localstack target over the wire', () => {
  it('reads function and bucket from stack volley-local and sends CloudFormation, Lambda and S3 calls to AWS_ENDPOINT_URL', async () => {
    const before = { ...ls!.edge.requests };
    const rt = await new Runtime({ maxConcurrency: 2 }).ready();
    try {
      assert.equal(ls!.edge.requests.cloudformation, before.cloudformation + 1, 'one DescribeStacks call at start');
      const big = rt.put(new Float64Array(50_000).fill(1.5)); // above the inline limit: stored in the bucket
      assert.equal(await rt.get(rt.remote(add, 2, 3)), 5);
      assert.equal((await rt.get(big)).length, 50_000);
      assert.ok(ls!.edge.requests.lambda > before.lambda, 'the task was invoked through the edge');
      assert.ok(ls!.edge.requests.s3 > before.s3, 'the object went to S3 through the edge');
    } finally {
      await rt.shutdown();
    }
  });

  it('a stack that was never deployed is a ConfigError naming the deploy command', async () => {
    process.env.VOLLEY_STACK = 'volley-nowhere';
    try {
      await assert.rejects(
        new Runtime().ready(),
        (e: unknown) => e instanceof ConfigError && /stack volley-nowhere .*does not exist: deploy it with npx volley deploy --target localstack --stage nowhere/.test(e.message),
      );
    } finally {
      delete process.env.VOLLEY_STACK;
    }
  });

  it('gives up reading the stack from an endpoint that accepts connections but never answers', { timeout: 60_000 }, async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      await assert.rejects(
        readStackOutputs({
          stackName: 'volley-local',
          endpoint,
          region: 'us-east-1',
          credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
          deployHint: 'npx volley deploy --target localstack',
          timeoutMs: 300,
        }),
        (e: unknown) => e instanceof ConfigError && e.message.includes(`check that ${endpoint} is up`),
      );
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
