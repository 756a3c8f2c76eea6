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
    assert.match(err.message, /stack volley-nope in eu-west-1 does not exist: deploy it with npx volley deploy --target aws --stage nope /);
    await rt.shutdown();
  });

  it("a project's driver looking for the default stack is told that the CLI named it after the project", async () => {
    // npx volley deploy in a project "my-app" deploys stack my-app-dev; a driver run without
    // VOLLEY_STACK looks for volley-dev, and "deploy it with npx volley deploy" alone sent the
    // user to deploy again a stack that the driver would still not find.
    cfn.stacks.delete('volley-dev');
    const rt = new Runtime({ target: 'aws' });
    const err = await rt.ready().catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /stack volley-dev in eu-west-1 does not exist: deploy it with npx volley deploy --target aws \(in a project it deploys stack <service>-dev/);
    assert.match(err.message, /eval "\$\(npx volley info --target aws\)", or VOLLEY_STACK/);
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

describe('the aws target without a region or credentials', () => {
  // The SDK's own variables that could give a region or credentials from this machine: cleared,
  // and the shared files pointed at a path that does not exist, so the chain finds nothing
  // (IMDS is disabled: this is not an EC2 instance, and its probe would only add a delay).
  const VARS = [
    'AWS_REGION',
    'AWS_DEFAULT_REGION',
    'AWS_PROFILE',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_CONFIG_FILE',
    'AWS_SHARED_CREDENTIALS_FILE',
    'AWS_EC2_METADATA_DISABLED',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'VOLLEY_STACK',
    'VOLLEY_FUNCTION_NAME',
    'VOLLEY_BUCKET',
  ] as const;
  const saved: Partial<Record<(typeof VARS)[number], string>> = {};
  before(() => {
    for (const k of VARS) saved[k] = process.env[k];
    for (const k of VARS) delete process.env[k];
    process.env.AWS_CONFIG_FILE = '/nonexistent/volley-test/config';
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/volley-test/credentials';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
  });
  after(() => {
    for (const k of VARS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('no region: init() fails with a ConfigError saying how to set one, before any task is sent', async () => {
    // Before: init() succeeded and every task failed at its invocation with "the outcome of its
    // invocation on Lambda function f is unknown (Error: Region is missing) ... the task may have run".
    const rt = new Runtime({ target: 'aws', aws: { functionName: 'f', bucket: 'b' } });
    const err = await rt.ready().catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /the aws target has no AWS region \(.*Region is missing\); set AWS_REGION .* init\(\{ aws: \{ region: /);
    await rt.shutdown();
  });

  it('no credentials: init() fails with a ConfigError naming the ways to give them', async () => {
    process.env.AWS_REGION = 'eu-west-1';
    try {
      const rt = new Runtime({ target: 'aws', aws: { functionName: 'f', bucket: 'b' } });
      const err = await rt.ready().catch((e: unknown) => e);
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /the aws target found no AWS credentials \(CredentialsProviderError: .*\); configure them with aws configure/);
      assert.match(err.message, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
      await rt.shutdown();
    } finally {
      delete process.env.AWS_REGION;
    }
  });
});
