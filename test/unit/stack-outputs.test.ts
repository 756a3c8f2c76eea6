/**
 * The `aws` target finds its function and bucket in the outputs of the deployed stack, over
 * CloudFormation's wire protocol (a fake endpoint, test/fakes/cloudformation.ts, named by the
 * SDK's own AWS_ENDPOINT_URL_CLOUDFORMATION), and says how to fix it when the stack is missing
 * or was not deployed from volley's serverless.yml.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, Runtime } from 'volley';
import { startFakeCloudFormation, type FakeCloudFormation } from '../fakes/cloudformation.js';
import { startFakeS3, type FakeS3 } from '../fakes/s3-conditional.js';

const ENV = ['AWS_ENDPOINT_URL_CLOUDFORMATION', 'AWS_ENDPOINT_URL_S3', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'VOLLEY_STACK', 'VOLLEY_FUNCTION_NAME', 'VOLLEY_BUCKET'] as const;

describe('the aws target: function and bucket from the stack outputs', () => {
  let cfn: FakeCloudFormation;
  let s3: FakeS3;
  const saved: Partial<Record<(typeof ENV)[number], string>> = {};
  before(async () => {
    cfn = await startFakeCloudFormation();
    s3 = await startFakeS3('volley-dev-bucket-abc');
    for (const k of ENV) saved[k] = process.env[k];
    for (const k of ENV) delete process.env[k];
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_CLOUDFORMATION: cfn.endpoint,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_REGION: 'eu-west-1',
    });
  });
  after(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await cfn?.close();
    await s3?.close();
  });

  it('reads WorkerFunctionName and BucketName from stack volley-dev', async () => {
    cfn.stacks.set('volley-dev', { WorkerFunctionName: 'volley-dev-worker', BucketName: 'volley-dev-bucket-abc', Other: 'x' });
    const rt = await new Runtime({ target: 'aws' }).ready();
    try {
      const backend = await (rt as unknown as { starting: Promise<{ functionName: string; bucket: string }> }).starting;
      assert.equal(backend.functionName, 'volley-dev-worker');
      assert.equal(backend.bucket, 'volley-dev-bucket-abc');
      assert.deepEqual(cfn.calls, ['volley-dev']);
    } finally {
      await rt.shutdown();
    }
    assert.deepEqual(
      s3.requests.map((r) => `${r.op} ${r.status}`),
      ['ListObjectsV2 200'],
      'shutdown cleaned up in the bucket the stack named',
    );
  });

  it('takes the stack name from VOLLEY_STACK, and names from options without asking CloudFormation', async () => {
    cfn.stacks.set('volley-test', { WorkerFunctionName: 'volley-test-worker', BucketName: 'volley-dev-bucket-abc' });
    process.env.VOLLEY_STACK = 'volley-test';
    cfn.calls.length = 0;
    try {
      const rt = await new Runtime({ target: 'aws' }).ready();
      const b = await (rt as unknown as { starting: Promise<{ functionName: string }> }).starting;
      assert.equal(b.functionName, 'volley-test-worker');
      await rt.shutdown();
      const named = await new Runtime({ target: 'aws', aws: { functionName: 'f', bucket: 'volley-dev-bucket-abc' } }).ready();
      await named.shutdown();
      assert.deepEqual(cfn.calls, ['volley-test']);
    } finally {
      delete process.env.VOLLEY_STACK;
    }
  });

  it('a missing stack is a ConfigError saying how to deploy it or name the resources', async () => {
    const rt = new Runtime({ target: 'aws', aws: { stackName: 'volley-nope' } });
    const err = await rt.ready().catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /stack volley-nope in eu-west-1 does not exist: deploy it with npx volley deploy --target aws --stage nope,/);
    assert.match(err.message, /init\(\{ aws: \{ functionName, bucket \} \}\) \(or VOLLEY_FUNCTION_NAME and VOLLEY_BUCKET\)/);
    await rt.shutdown();
  });

  it('a stack without volley outputs is a ConfigError naming the missing output', async () => {
    cfn.stacks.set('volley-other', { WorkerFunctionName: 'w' });
    const rt = new Runtime({ target: 'aws', aws: { stackName: 'volley-other' } });
    const err = await rt.ready().catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /stack volley-other in eu-west-1 has no BucketName output: it was not deployed from volley's serverless\.yml/);
    await rt.shutdown();
  });
});
