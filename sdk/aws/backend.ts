/**
 * The backend of the `aws`, `localstack` and `emulator` targets: a Lambda invoker and an S3
 * store, with the function and bucket named by options, environment, or the deployed stack.
 * Loaded only when such a target is chosen.
 */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { Backend } from '../backend.js';
import { ConfigError } from '../errors.js';
import type { ResolvedInitOptions } from '../options.js';
import { makeLambdaClient, makeS3Client } from './clients.js';
import type { BatchPolicy } from './batch-policy.js';
import { LambdaInvoker } from './lambda-invoker.js';
import { S3Store } from './s3-store.js';
import { readStackOutputs } from './stack.js';

export type AwsBackend = Backend & { invoker: LambdaInvoker; store: S3Store; functionName: string; bucket: string };

/**
 * The CLI command that deploys `stackName`. The CLI names a stack `<service>-<stage>` (stage dev
 * on aws, local on localstack), where the service is volley.config.json's "service", else
 * package.json's "name": `volley` in this repository, the project's name elsewhere, so a
 * project's driver must be told the name (VOLLEY_STACK, which `volley info` exports).
 */
export function deployCommand(target: 'aws' | 'localstack' | 'emulator', stackName: string): string {
  const stage = /^volley-([A-Za-z0-9-]+)$/.exec(stackName)?.[1];
  if (stage === undefined) {
    return `npx volley deploy --target ${target} --stage <stage> (it deploys stack <service>-<stage>; then set VOLLEY_STACK or init({ aws: { stackName } }) to that name)`;
  }
  const flags = `--target ${target}${stage === (target === 'aws' ? 'dev' : 'local') ? '' : ` --stage ${stage}`}`;
  const info = `npx volley info ${flags}`;
  return (
    `npx volley deploy ${flags}` +
    ` (in a project it deploys stack <service>-${stage}, named after volley.config.json "service" or package.json "name": ` +
    `then give the driver that name with eval "$(${info})", or VOLLEY_STACK)`
  );
}

/** How long init() waits for the SDK's credential chain (a profile's SSO or credential_process may call out). */
const CREDENTIALS_DEADLINE_MS = 30_000;

/**
 * The region and credentials of the `aws` target, resolved once at init(). Without this, a
 * driver given its function and bucket but no region or credentials started every task and
 * failed each at its invocation, a missing region even as "the outcome is unknown, the task
 * may have run" although no request left the machine.
 */
async function checkRegionAndCredentials(lambda: LambdaClient): Promise<void> {
  const reason = (err: unknown) => {
    const e = err as { name?: string; message?: string };
    return `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
  };
  try {
    await lambda.config.region();
  } catch (err) {
    throw new ConfigError(
      `the aws target has no AWS region (${reason(err)}); set AWS_REGION (or a profile with a region: AWS_PROFILE and ~/.aws/config), or pass init({ aws: { region: 'eu-west-1' } })`,
      { cause: err },
    );
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      lambda.config.credentials(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no credentials within ${CREDENTIALS_DEADLINE_MS / 1000} s`)), CREDENTIALS_DEADLINE_MS);
        timer.unref();
      }),
    ]);
  } catch (err) {
    throw new ConfigError(
      `the aws target found no AWS credentials (${reason(err)}); configure them with aws configure (or aws sso login), AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass your own client: init({ aws: { lambdaClient, s3Client } })`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The backend for `options`. `internal.batchLimits` replaces the batch policy's defaults (for
 * tests of what batching guarantees, apart from measured timings; not a user option). Typed from
 * BatchPolicy, not from LambdaInvokerOptions, whose field is marked internal: the published
 * declarations must not name a type that stripInternal removed (a project that checks its
 * libraries' types failed on volley/aws).
 */
export async function createAwsBackend(options: ResolvedInitOptions, internal: { batchLimits?: ConstructorParameters<typeof BatchPolicy>[0] } = {}): Promise<AwsBackend> {
  const a = options.aws!;
  const target = options.target as 'aws' | 'localstack' | 'emulator';
  let { functionName, bucket } = a;
  const lambda =
    a.lambdaClient ??
    makeLambdaClient({ region: a.region, endpoint: a.lambdaEndpoint, credentials: a.credentials, maxSockets: options.maxConcurrency, connectTimeoutMs: a.connectTimeoutMs }, a.lambdaClientConfig);
  try {
    if (target === 'aws') await checkRegionAndCredentials(lambda);
    if (!functionName || !bucket) {
      const out = await readStackOutputs({
        stackName: a.stackName,
        region: a.region,
        endpoint: target === 'localstack' ? (a.lambdaEndpoint ?? a.s3Endpoint) : undefined,
        credentials: a.credentials,
        deployHint: deployCommand(target, a.stackName),
      });
      functionName ??= out.functionName;
      bucket ??= out.bucket;
    }
  } catch (err) {
    if (a.lambdaClient === undefined) lambda.destroy();
    throw err;
  }
  const maxSockets = options.maxConcurrency;
  const deadlines = { connectMs: a.connectTimeoutMs, requestMs: a.s3RequestTimeoutMs, idleMs: a.s3IdleTimeoutMs };
  const s3 = a.s3Client ?? makeS3Client({ region: a.region, endpoint: a.s3Endpoint, credentials: a.credentials, maxSockets, forcePathStyle: a.forcePathStyle, deadlines }, a.s3ClientConfig);
  const store = new S3Store(s3, bucket, { multipartThresholdBytes: a.multipartThresholdBytes, rangeTimeoutMs: a.s3RequestTimeoutMs });
  const invoker = new LambdaInvoker(lambda, store, {
    functionName,
    invokeGraceMs: a.invokeGraceMs,
    baseDelayMs: a.throttleBaseDelayMs,
    maxDelayMs: a.throttleMaxDelayMs,
    giveUpMs: a.throttleGiveUpMs,
    ownsClient: a.lambdaClient === undefined,
    // maxConcurrency is the Lambda concurrency this job may take: invocations, which may each carry several short tasks.
    maxInvocations: options.maxConcurrency,
    batchLimits: internal.batchLimits,
    nest: {
      maxTaskDepth: options.maxTaskDepth,
      taskTimeoutMs: options.taskTimeoutMs,
      taskMemoryMB: options.taskMemoryMB,
      maxConcurrency: Math.min(options.maxConcurrency, 100),
    },
  });
  const ownsS3 = a.s3Client === undefined;
  // The store's client closes last, after the runtime removed the job's objects.
  const close = async () => {
    if (ownsS3) s3.destroy();
  };
  return { name: target, invoker, store, maxConcurrency: options.maxConcurrency, keyPrefix: a.keyPrefix, payloadLimitBytes: invoker.payloadLimitBytes, functionName, bucket, close };
}
