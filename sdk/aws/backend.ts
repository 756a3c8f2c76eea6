/**
 * The backend of the `aws`, `localstack` and `emulator` targets: a Lambda invoker and an S3
 * store, with the function and bucket named by options, environment, or the deployed stack.
 * Loaded only when such a target is chosen.
 */
import type { Backend } from '../backend.js';
import type { ResolvedInitOptions } from '../options.js';
import { makeLambdaClient, makeS3Client } from './clients.js';
import { LambdaInvoker, type LambdaInvokerOptions } from './lambda-invoker.js';
import { S3Store } from './s3-store.js';
import { readStackOutputs } from './stack.js';

export type AwsBackend = Backend & { invoker: LambdaInvoker; store: S3Store; functionName: string; bucket: string };

/** The CLI command that deploys `stackName` (the CLI names its stacks volley-<stage>; stage dev on aws, local on localstack). */
export function deployCommand(target: 'aws' | 'localstack' | 'emulator', stackName: string): string {
  const stage = /^volley-([A-Za-z0-9-]+)$/.exec(stackName)?.[1];
  if (stage === undefined) {
    return `npx volley deploy --target ${target} --stage <stage> (it deploys stack volley-<stage>; then set VOLLEY_STACK or init({ aws: { stackName } }) to that name)`;
  }
  return `npx volley deploy --target ${target}${stage === (target === 'aws' ? 'dev' : 'local') ? '' : ` --stage ${stage}`}`;
}

/**
 * The backend for `options`. `internal.batchLimits` replaces the batch policy's defaults (for
 * tests of what batching guarantees, apart from measured timings; not a user option).
 */
export async function createAwsBackend(options: ResolvedInitOptions, internal: { batchLimits?: LambdaInvokerOptions['batchLimits'] } = {}): Promise<AwsBackend> {
  const a = options.aws!;
  const target = options.target as 'aws' | 'localstack' | 'emulator';
  let { functionName, bucket } = a;
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
  const maxSockets = options.maxConcurrency;
  const deadlines = { connectMs: a.connectTimeoutMs, requestMs: a.s3RequestTimeoutMs, idleMs: a.s3IdleTimeoutMs };
  const s3 = a.s3Client ?? makeS3Client({ region: a.region, endpoint: a.s3Endpoint, credentials: a.credentials, maxSockets, forcePathStyle: a.forcePathStyle, deadlines }, a.s3ClientConfig);
  const lambda =
    a.lambdaClient ?? makeLambdaClient({ region: a.region, endpoint: a.lambdaEndpoint, credentials: a.credentials, maxSockets, connectTimeoutMs: a.connectTimeoutMs }, a.lambdaClientConfig);
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
