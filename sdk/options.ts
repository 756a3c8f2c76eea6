/**
 * Public option types (all optional, each with its default documented) and their resolved
 * forms, built in one place from one defaults table.
 */
import type { LambdaClient, LambdaClientConfig } from '@aws-sdk/client-lambda';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { ConfigError, UsageError } from './errors.js';

/** Per-task options, given to `remote(fn, options)` or `rf.options(overrides)`. @public */
export interface TaskOptions {
  /** Task name, its identity across driver and workers. Default: the function's name. */
  name?: string;
  /** Wall-clock limit for one run of the task, in ms. Default: the runtime's `taskTimeoutMs` (300000). */
  timeoutMs?: number;
  /** Memory for the task's worker in MB (Lambda memory size). Default: the runtime's `taskMemoryMB` (1024). */
  memoryMB?: number;
}

/** Options of the embedded runtime's worker pool. @public */
export interface LocalOptions {
  /** Most worker threads alive at once. Default: 32. */
  maxWorkers?: number;
  /** Workers started at init, before any task arrives. Default: 0. */
  minWorkers?: number;
  /** An idle worker is stopped after this many ms. Default: 30000. */
  idleTimeoutMs?: number;
}

/** Give the S3 client, or a config to build one from, not both. */
export type S3ClientChoice =
  | { /** An S3 client to use as it is (its endpoint, credentials and agent are yours). */ s3Client?: S3Client; s3ClientConfig?: never }
  | { s3Client?: never; /** Extra config for the S3 client volley builds. */ s3ClientConfig?: S3ClientConfig };

/** Give the Lambda client, or a config to build one from, not both. */
export type LambdaClientChoice =
  | { /** A Lambda client to use as it is; size its HTTP agent to maxConcurrency yourself. */ lambdaClient?: LambdaClient; lambdaClientConfig?: never }
  | { lambdaClient?: never; /** Extra config for the Lambda client volley builds. */ lambdaClientConfig?: LambdaClientConfig };

/**
 * Options of the AWS-like targets (`aws`, `localstack`, `emulator`). Each falls back to an
 * environment variable, then to a default; see docs/AWS.md. @public
 */
export type AwsOptions = AwsBaseOptions & S3ClientChoice & LambdaClientChoice;

/** @public */
export interface AwsBaseOptions {
  /** Region. Default: `AWS_REGION`/`AWS_DEFAULT_REGION`, else the SDK's chain (aws) or `us-east-1` (localstack, emulator). */
  region?: string;
  /** Name of the deployed worker function. Default: `VOLLEY_FUNCTION_NAME`, else the stack output `WorkerFunctionName`. */
  functionName?: string;
  /** Name of the object-store bucket. Default: `VOLLEY_BUCKET`, else the stack output `BucketName`. */
  bucket?: string;
  /** CloudFormation stack whose outputs name the function and bucket. Default: `VOLLEY_STACK`, else `volley-dev` (aws) or `volley-local` (localstack). */
  stackName?: string;
  /** One endpoint for every service (LocalStack). Default: `AWS_ENDPOINT_URL`, else `http://localhost.localstack.cloud:4566` for localstack; none for aws. */
  endpoint?: string;
  /** Endpoint of the Lambda Invoke API alone (serverless-offline). Default: `VOLLEY_LAMBDA_ENDPOINT`, else `endpoint`. */
  lambdaEndpoint?: string;
  /** Endpoint of S3 alone (s3rver). Default: `VOLLEY_S3_ENDPOINT`, else `endpoint`. */
  s3Endpoint?: string;
  /** Prefix of every key volley writes in the bucket (the lifecycle rule expires it). Default: `'volley/'`. */
  keyPrefix?: string;
  /** Objects larger than this are uploaded in parts (lib-storage). Default: 16 MiB. */
  multipartThresholdBytes?: number;
  /** A throttled invocation (429) is retried with backoff from this delay, in ms. Default: 100. */
  throttleBaseDelayMs?: number;
  /** Longest backoff between throttled retries, in ms. Default: 5000. */
  throttleMaxDelayMs?: number;
  /** Give up on a task still throttled after this many ms, failing it. Default: 600000 (10 minutes). */
  throttleGiveUpMs?: number;
  /**
   * The driver stops waiting for an invocation this long after the task's `timeoutMs` (the
   * worker reports a timeout itself; this covers a worker that cannot, e.g. a busy loop or a
   * slow cold start). Default: 30000.
   */
  invokeGraceMs?: number;
}

/** Targets: `local` (embedded runtime), `aws`, `localstack`, `emulator` (s3rver + serverless-offline). @public */
export type Target = 'local' | 'aws' | 'localstack' | 'emulator';

/** Options of `init()`. @public */
export interface InitOptions {
  /** Where tasks run. Default: the `VOLLEY_TARGET` environment variable, else `'local'` (the embedded runtime). */
  target?: Target;
  /** Values up to this many bytes travel inside the task envelope; larger ones go through the object store. Default: 102400. */
  inlineThresholdBytes?: number;
  /** Most tasks in flight at once. Default: 32 × `local.maxWorkers` (local: the pool queues the rest), 100 (aws), 16 (localstack, emulator). */
  maxConcurrency?: number;
  /** Default per-task timeout in ms. Default: 300000. */
  taskTimeoutMs?: number;
  /** Default per-task memory in MB. Default: 1024. */
  taskMemoryMB?: number;
  /** Id of this job; the store keeps the job's objects under it. Default: a random id. */
  jobId?: string;
  /** Embedded runtime options. */
  local?: LocalOptions;
  /** Options of the `aws`, `localstack` and `emulator` targets. */
  aws?: AwsOptions;
}

export interface ResolvedLocalOptions {
  maxWorkers: number;
  minWorkers: number;
  idleTimeoutMs: number;
}

/** AWS options after defaults and environment; functionName/bucket may still come from stack outputs. */
export interface ResolvedAwsOptions {
  region?: string;
  functionName?: string;
  bucket?: string;
  stackName: string;
  lambdaEndpoint?: string;
  s3Endpoint?: string;
  /** Path-style S3 URLs: on for any custom S3 endpoint (LocalStack, s3rver). */
  forcePathStyle: boolean;
  /** Static credentials for an emulator (s3rver accepts only S3RVER/S3RVER); otherwise the SDK's chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  keyPrefix: string;
  multipartThresholdBytes: number;
  throttleBaseDelayMs: number;
  throttleMaxDelayMs: number;
  throttleGiveUpMs: number;
  invokeGraceMs: number;
  s3Client?: S3Client;
  s3ClientConfig?: S3ClientConfig;
  lambdaClient?: LambdaClient;
  lambdaClientConfig?: LambdaClientConfig;
}

export interface ResolvedInitOptions {
  target: Target;
  inlineThresholdBytes: number;
  maxConcurrency: number;
  taskTimeoutMs: number;
  taskMemoryMB: number;
  jobId: string;
  local: ResolvedLocalOptions;
  /** Present for the aws, localstack and emulator targets. */
  aws?: ResolvedAwsOptions;
}

export interface ResolvedTaskOptions {
  timeoutMs: number;
  memoryMB: number;
}

const TARGETS: readonly Target[] = ['local', 'aws', 'localstack', 'emulator'];

/** The one table of per-target defaults of the AWS-like targets. */
export const awsTargetDefaults = {
  aws: { maxConcurrency: 100, stackName: 'volley-dev', endpoint: undefined, region: undefined, credentials: undefined, functionName: undefined, bucket: undefined },
  localstack: {
    maxConcurrency: 16,
    stackName: 'volley-local',
    endpoint: 'http://localhost.localstack.cloud:4566',
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    functionName: undefined,
    bucket: undefined,
  },
  emulator: {
    maxConcurrency: 16,
    stackName: 'volley-emulator',
    endpoint: undefined,
    region: 'us-east-1',
    // s3rver accepts only this key pair; serverless-offline does not check credentials.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // serverless-offline names the function service-stage-function, as CloudFormation would.
    functionName: 'volley-emulator-worker',
    bucket: 'volley-emulator',
  },
} as const;

export const awsDefaults = {
  keyPrefix: 'volley/',
  multipartThresholdBytes: 16 * 1024 * 1024,
  throttleBaseDelayMs: 100,
  throttleMaxDelayMs: 5_000,
  throttleGiveUpMs: 600_000,
  invokeGraceMs: 30_000,
};

const AWS_KEYS = [
  'region', 'functionName', 'bucket', 'stackName', 'endpoint', 'lambdaEndpoint', 's3Endpoint', 'keyPrefix',
  'multipartThresholdBytes', 'throttleBaseDelayMs', 'throttleMaxDelayMs', 'throttleGiveUpMs', 'invokeGraceMs',
  's3Client', 's3ClientConfig', 'lambdaClient', 'lambdaClientConfig',
] as const;

/**
 * Tasks in flight per local worker: the pool queues what its workers cannot take yet, and hands
 * short tasks to a worker several at a time, which needs a queue to draw from.
 */
const LOCAL_TASKS_PER_WORKER = 32;

export const localDefaults: ResolvedLocalOptions = { maxWorkers: 32, minWorkers: 0, idleTimeoutMs: 30_000 };

const initDefaults = {
  inlineThresholdBytes: 100 * 1024,
  taskTimeoutMs: 300_000,
  taskMemoryMB: 1024,
};

/** Throws a UsageError naming unknown keys and listing the valid ones. */
export function checkKeys(where: string, given: object | undefined, valid: readonly string[]): void {
  if (given === undefined) return;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new UsageError(`${where} must be an object of options (${valid.join(', ')})`);
  }
  const unknown = Object.keys(given).filter((k) => !valid.includes(k));
  if (unknown.length > 0) {
    throw new UsageError(`${where} got unknown option(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; valid options are: ${valid.join(', ')}`);
  }
}

export function checkNumber(where: string, v: unknown, opts: { min: number; integer?: boolean; allowInfinity?: boolean }): void {
  if (v === undefined) return;
  const ok =
    typeof v === 'number' &&
    !Number.isNaN(v) &&
    v >= opts.min &&
    (opts.allowInfinity || Number.isFinite(v)) &&
    (!opts.integer || Number.isInteger(v) || v === Infinity);
  if (!ok) {
    throw new UsageError(`${where} must be ${opts.integer ? 'an integer' : 'a number'} >= ${opts.min}, got ${String(v)}`);
  }
}

export function resolveTaskOptionsInput(where: string, o: TaskOptions | undefined): TaskOptions {
  checkKeys(where, o, ['name', 'timeoutMs', 'memoryMB']);
  if (!o) return {};
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.trim() === '')) {
    throw new UsageError(`${where}: name must be a non-empty string`);
  }
  checkNumber(`${where}: timeoutMs`, o.timeoutMs, { min: 1 });
  checkNumber(`${where}: memoryMB`, o.memoryMB, { min: 128, integer: true });
  return { ...o };
}

function randomJobId(): string {
  const d = new Date();
  const stamp = d.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${stamp}-${Math.random().toString(36).slice(2, 8)}`;
}

export function resolveInitOptions(o: InitOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedInitOptions {
  checkKeys('init()', o, ['target', 'inlineThresholdBytes', 'maxConcurrency', 'taskTimeoutMs', 'taskMemoryMB', 'jobId', 'local', 'aws']);
  const opts = o ?? {};
  const target = (opts.target ?? env.VOLLEY_TARGET ?? 'local') as ResolvedInitOptions['target'];
  if (!TARGETS.includes(target)) {
    throw new UsageError(`unknown target ${JSON.stringify(target)} (from ${opts.target ? 'init({ target })' : 'VOLLEY_TARGET'}); valid targets are: ${TARGETS.join(', ')}`);
  }
  checkKeys('init({ local })', opts.local, ['maxWorkers', 'minWorkers', 'idleTimeoutMs']);
  const local: ResolvedLocalOptions = { ...localDefaults, ...opts.local };
  checkNumber('init({ local: { maxWorkers } })', local.maxWorkers, { min: 1, integer: true });
  checkNumber('init({ local: { minWorkers } })', local.minWorkers, { min: 0, integer: true });
  checkNumber('init({ local: { idleTimeoutMs } })', local.idleTimeoutMs, { min: 0 });
  if (local.minWorkers > local.maxWorkers) {
    throw new UsageError(`init({ local }): minWorkers (${local.minWorkers}) cannot exceed maxWorkers (${local.maxWorkers})`);
  }
  checkNumber('init({ inlineThresholdBytes })', opts.inlineThresholdBytes, { min: 0, integer: true });
  checkNumber('init({ maxConcurrency })', opts.maxConcurrency, { min: 1, integer: true, allowInfinity: true });
  checkNumber('init({ taskTimeoutMs })', opts.taskTimeoutMs, { min: 1 });
  checkNumber('init({ taskMemoryMB })', opts.taskMemoryMB, { min: 128, integer: true });
  if (opts.jobId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(opts.jobId)) {
    throw new UsageError(`init({ jobId }) must be 1-64 characters of letters, digits, '.', '_' or '-', got ${JSON.stringify(opts.jobId)}`);
  }
  if (target === 'local' && opts.aws !== undefined) {
    throw new UsageError(`init({ aws }) was given but the target is 'local'; set target to 'aws', 'localstack' or 'emulator' (or VOLLEY_TARGET), or drop the aws options`);
  }
  const aws = target === 'local' ? undefined : resolveAwsOptions(target, opts.aws, env);
  return {
    target,
    inlineThresholdBytes: opts.inlineThresholdBytes ?? initDefaults.inlineThresholdBytes,
    maxConcurrency: opts.maxConcurrency ?? (target === 'local' ? local.maxWorkers * LOCAL_TASKS_PER_WORKER : awsTargetDefaults[target].maxConcurrency),
    taskTimeoutMs: opts.taskTimeoutMs ?? initDefaults.taskTimeoutMs,
    taskMemoryMB: opts.taskMemoryMB ?? initDefaults.taskMemoryMB,
    jobId: opts.jobId ?? randomJobId(),
    local,
    aws,
  };
}

function checkString(where: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'string' || v === '')) throw new UsageError(`${where} must be a non-empty string, got ${String(v)}`);
}

function checkUrl(where: string, v: string | undefined): void {
  if (v === undefined) return;
  try {
    new URL(v);
  } catch {
    throw new UsageError(`${where} must be a URL such as http://127.0.0.1:4566, got ${JSON.stringify(v)}`);
  }
}

/** Resolves the aws block for an AWS-like target: options, then environment, then the defaults table. */
export function resolveAwsOptions(target: Exclude<Target, 'local'>, o: AwsOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedAwsOptions {
  checkKeys('init({ aws })', o, AWS_KEYS);
  const a = (o ?? {}) as AwsBaseOptions & { s3Client?: S3Client; s3ClientConfig?: S3ClientConfig; lambdaClient?: LambdaClient; lambdaClientConfig?: LambdaClientConfig };
  if (a.s3Client !== undefined && a.s3ClientConfig !== undefined) {
    throw new UsageError('init({ aws }) got both s3Client and s3ClientConfig; give the client, or a config for volley to build one, not both');
  }
  if (a.lambdaClient !== undefined && a.lambdaClientConfig !== undefined) {
    throw new UsageError('init({ aws }) got both lambdaClient and lambdaClientConfig; give the client, or a config for volley to build one, not both');
  }
  for (const k of ['region', 'functionName', 'bucket', 'stackName', 'endpoint', 'lambdaEndpoint', 's3Endpoint'] as const) checkString(`init({ aws: { ${k} } })`, a[k]);
  if (a.keyPrefix !== undefined && (typeof a.keyPrefix !== 'string' || !/^([A-Za-z0-9._-]+\/)*$/.test(a.keyPrefix))) {
    throw new UsageError(`init({ aws: { keyPrefix } }) must be '' or path segments each ending in '/', such as 'volley/', got ${JSON.stringify(a.keyPrefix)}`);
  }
  checkNumber('init({ aws: { multipartThresholdBytes } })', a.multipartThresholdBytes, { min: 5 * 1024 * 1024, integer: true });
  checkNumber('init({ aws: { throttleBaseDelayMs } })', a.throttleBaseDelayMs, { min: 1 });
  checkNumber('init({ aws: { throttleMaxDelayMs } })', a.throttleMaxDelayMs, { min: 1 });
  checkNumber('init({ aws: { throttleGiveUpMs } })', a.throttleGiveUpMs, { min: 0 });
  checkNumber('init({ aws: { invokeGraceMs } })', a.invokeGraceMs, { min: 0 });
  const t = awsTargetDefaults[target];
  const endpoint = a.endpoint ?? (target === 'localstack' ? env.AWS_ENDPOINT_URL : undefined) ?? t.endpoint;
  const lambdaEndpoint = a.lambdaEndpoint ?? env.VOLLEY_LAMBDA_ENDPOINT ?? endpoint;
  const s3Endpoint = a.s3Endpoint ?? env.VOLLEY_S3_ENDPOINT ?? endpoint;
  checkUrl('the Lambda endpoint (init({ aws: { lambdaEndpoint } }) or VOLLEY_LAMBDA_ENDPOINT)', lambdaEndpoint);
  checkUrl('the S3 endpoint (init({ aws: { s3Endpoint } }) or VOLLEY_S3_ENDPOINT)', s3Endpoint);
  if (target === 'emulator' && (!lambdaEndpoint || !s3Endpoint)) {
    throw new ConfigError(
      "target 'emulator' needs the serverless-offline and s3rver endpoints: pass init({ aws: { lambdaEndpoint, s3Endpoint } }) or set VOLLEY_LAMBDA_ENDPOINT and VOLLEY_S3_ENDPOINT " +
        '(infra/emulators.ts startEmulators() starts both and returns them)',
    );
  }
  const hasStaticKeys = env.AWS_ACCESS_KEY_ID !== undefined || env.AWS_PROFILE !== undefined;
  return {
    region: a.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? t.region,
    functionName: a.functionName ?? env.VOLLEY_FUNCTION_NAME ?? t.functionName,
    bucket: a.bucket ?? env.VOLLEY_BUCKET ?? t.bucket,
    stackName: a.stackName ?? env.VOLLEY_STACK ?? t.stackName,
    lambdaEndpoint,
    s3Endpoint,
    forcePathStyle: s3Endpoint !== undefined,
    // LocalStack takes any key pair; use the environment's when it has one. s3rver takes only its own.
    credentials: target === 'emulator' || (target === 'localstack' && !hasStaticKeys) ? t.credentials : undefined,
    keyPrefix: a.keyPrefix ?? awsDefaults.keyPrefix,
    multipartThresholdBytes: a.multipartThresholdBytes ?? awsDefaults.multipartThresholdBytes,
    throttleBaseDelayMs: a.throttleBaseDelayMs ?? awsDefaults.throttleBaseDelayMs,
    throttleMaxDelayMs: a.throttleMaxDelayMs ?? awsDefaults.throttleMaxDelayMs,
    throttleGiveUpMs: a.throttleGiveUpMs ?? awsDefaults.throttleGiveUpMs,
    invokeGraceMs: a.invokeGraceMs ?? awsDefaults.invokeGraceMs,
    s3Client: a.s3Client,
    s3ClientConfig: a.s3ClientConfig,
    lambdaClient: a.lambdaClient,
    lambdaClientConfig: a.lambdaClientConfig,
  };
}
