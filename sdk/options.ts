/**
 * Public option types (all optional, each with its default documented), the one options table
 * (key, default, environment variable, check, doc), and the resolved forms built from it.
 */
import type { LambdaClient, LambdaClientConfig } from '@aws-sdk/client-lambda';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { ConfigError, UsageError, type TaskError } from './errors.js';
import { MAX_TIMER_MS } from './timers.js';
import { OBSERVE_ENV, checkCostRegion, checkObserveOption, resolveObserveOptions, type ObserveOptions, type ResolvedObserveOptions } from './observe/options.js';

/** Per-task options, given to `remote(fn, options)` or `rf.options(overrides)`. @public */
export interface TaskOptions {
  /** Task name, its identity across driver and workers. Default: the function's name. */
  name?: string;
  /** Wall-clock limit for one run of the task, in ms. Default: the runtime's `taskTimeoutMs` (300000). */
  timeoutMs?: number;
  /** Memory for the task's worker in MB (Lambda memory size). Default: the runtime's `taskMemoryMB` (1024). */
  memoryMB?: number;
  /**
   * How many times a task is run again after a system failure (its worker crashed or ran out of
   * memory, the invocation failed with a 5xx, a reset or was throttled past its give-up time,
   * the store failed with a 5xx, or the task timed out), and how many times its result is
   * rebuilt when its stored object is lost. `-1`: forever; `0`: never. Default: 3 (as in Ray).
   */
  maxRetries?: number;
  /**
   * Whether the task's own exceptions are retried too (within `maxRetries`): `true` (all),
   * a list of error names (`err.name`, e.g. `['FetchError']`), or a predicate on the TaskError,
   * evaluated in the driver. Default: false.
   */
  retryExceptions?: RetryExceptions;
}

/**
 * Which application exceptions of a task are retried: all (`true`), none (`false`), those whose
 * name is listed, or those a predicate accepts. The predicate runs in the driver, on the
 * TaskError (its `remote` holds the thrown error's name, message and stack), so it never has to
 * travel to a worker. @public
 */
export type RetryExceptions = boolean | readonly string[] | ((err: TaskError) => boolean);

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
  | { s3Client?: never /** Extra config for the S3 client volley builds. */; s3ClientConfig?: S3ClientConfig };

/** Give the Lambda client, or a config to build one from, not both. */
export type LambdaClientChoice =
  | { /** A Lambda client to use as it is; size its HTTP agent to maxConcurrency yourself. */ lambdaClient?: LambdaClient; lambdaClientConfig?: never }
  | { lambdaClient?: never /** Extra config for the Lambda client volley builds. */; lambdaClientConfig?: LambdaClientConfig };

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
  /** Every connection to S3 or Lambda must be made within this many ms. Default: 5000. */
  connectTimeoutMs?: number;
  /** An S3 request (or one part of a multipart upload) must be answered within this many ms. Default: 60000. */
  s3RequestTimeoutMs?: number;
  /** An S3 transfer fails when no byte moves for this many ms, however large the body. Default: 20000. */
  s3IdleTimeoutMs?: number;
}

/** Targets: `local` (embedded runtime), `aws`, `localstack`, `emulator` (s3rver + serverless-offline). @public */
export type Target = 'local' | 'aws' | 'localstack' | 'emulator';

/** Options of `init()`; the observability ones (progress, timeline, dashboard, cost, summary) are in `ObserveOptions`. @public */
export interface InitOptions extends ObserveOptions {
  /** Where tasks run. Default: the `VOLLEY_TARGET` environment variable, else `'local'` (the embedded runtime). */
  target?: Target;
  /** Values up to this many bytes travel inside the task envelope; larger ones go through the object store. Default: 102400. */
  inlineThresholdBytes?: number;
  /** Local: most tasks in flight at once (default 32 × `local.maxWorkers`; the pool queues the rest). aws, localstack, emulator: most Lambda invocations in flight at once (default 100 on aws, 16 on localstack and emulator; short tasks share an invocation). */
  maxConcurrency?: number;
  /** Default per-task timeout in ms; at most 900000 (Lambda's limit) on the aws, localstack and emulator targets. Default: 300000. */
  taskTimeoutMs?: number;
  /** Default per-task memory in MB, 128 to 10240 (Lambda's range). Default: 1024. */
  taskMemoryMB?: number;
  /**
   * `shutdown()` waits at most this long for the store to remove the job's objects, then
   * rejects with an ObjectStoreError naming the prefix it could not remove. Default: 30000.
   */
  shutdownTimeoutMs?: number;
  /** First backoff before a task is retried, in ms; it doubles per retry, with jitter. Default: 100. */
  retryBaseDelayMs?: number;
  /** Longest backoff before a retry, in ms. Default: 10000. */
  retryMaxDelayMs?: number;
  /** Id of this job; the store keeps the job's objects under it. Default: a random id. */
  jobId?: string;
  /** How deep tasks may start tasks: a task the driver starts is at depth 0, its children at 1, and so on. Default: 16. */
  maxTaskDepth?: number;
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
  connectTimeoutMs: number;
  s3RequestTimeoutMs: number;
  s3IdleTimeoutMs: number;
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
  shutdownTimeoutMs: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  jobId: string;
  maxTaskDepth: number;
  local: ResolvedLocalOptions;
  /** Present for the aws, localstack and emulator targets. */
  aws?: ResolvedAwsOptions;
  /** Progress, timeline, dashboard, cost and summary. */
  observe: ResolvedObserveOptions;
}

export interface ResolvedTaskOptions {
  timeoutMs: number;
  memoryMB: number;
}

const TARGETS: readonly Target[] = ['local', 'aws', 'localstack', 'emulator'];
type AwsTarget = Exclude<Target, 'local'>;

/** Checks one option's value; `where` names it in the message (e.g. `init({ taskTimeoutMs })`). */
type Check = (where: string, v: unknown) => void;

/** One row of the options table. */
export interface OptionRow {
  /** The default, or one per AWS-like target; absent when there is none (or it is computed, see `doc`). */
  readonly default?: unknown;
  readonly byTarget?: Readonly<Record<AwsTarget, unknown>>;
  /** The environment variable read when the option is not given. */
  readonly env?: string;
  readonly check: Check;
  readonly doc: string;
}

export function checkNumber(where: string, v: unknown, opts: { min: number; max?: number; integer?: boolean; allowInfinity?: boolean; why?: string }): void {
  if (v === undefined) return;
  const ok =
    typeof v === 'number' &&
    !Number.isNaN(v) &&
    v >= opts.min &&
    (opts.max === undefined || v <= opts.max) &&
    (opts.allowInfinity || Number.isFinite(v)) &&
    (!opts.integer || Number.isInteger(v) || v === Infinity);
  if (!ok) {
    const range = opts.max === undefined ? `>= ${opts.min}` : `from ${opts.min} to ${opts.max}`;
    throw new UsageError(`${where} must be ${opts.integer ? 'an integer' : 'a number'} ${range}${opts.why ? ` (${opts.why})` : ''}, got ${String(v)}`);
  }
}

const num =
  (opts: { min: number; max?: number; integer?: boolean; allowInfinity?: boolean; why?: string }): Check =>
  (where, v) =>
    checkNumber(where, v, opts);

/** Lambda's limits: memory sizes (MB) and the longest one invocation may run (ms). */
export const LAMBDA_MIN_MEMORY_MB = 128;
export const LAMBDA_MAX_MEMORY_MB = 10_240;
export const LAMBDA_MAX_TIMEOUT_MS = 900_000;
/**
 * Largest inline value a Lambda task can carry in its request or answer: Lambda's 6 MiB
 * payload limit, halved for base64 and the envelope around it (the budget envelope.ts uses).
 */
export const LAMBDA_MAX_INLINE_BYTES = 3 * 1024 * 1024;

const memoryCheck = num({ min: LAMBDA_MIN_MEMORY_MB, max: LAMBDA_MAX_MEMORY_MB, integer: true, why: "Lambda's memory sizes" });

/**
 * A task timeout that the target can honour: on Lambda at most 900 s per invocation; on the
 * embedded runtime any length (long waits are chained, see timers.ts).
 */
export function checkTaskTimeoutForTarget(target: Target, where: string, ms: number): void {
  if (target !== 'local' && ms > LAMBDA_MAX_TIMEOUT_MS) {
    throw new UsageError(
      `${where} is ${ms} ms, but target '${target}' runs tasks on Lambda, where one invocation runs at most ${LAMBDA_MAX_TIMEOUT_MS} ms (900 s); lower it, or split the work into several tasks`,
    );
  }
}

function checkString(where: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'string' || v === '')) throw new UsageError(`${where} must be a non-empty string, got ${String(v)}`);
}

function checkObject(where: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) throw new UsageError(`${where} must be an object of options`);
}

/** Anything: a client or client config, checked by the AWS SDK itself. */
const anyValue: Check = () => undefined;

/** Smallest multipart part S3 accepts, so the smallest multipart threshold. */
const S3_MIN_PART = 5 * 1024 * 1024;

/**
 * The one options table: every option's key, default, environment variable, check and doc,
 * by where it is given. Every reader of options (init, the Lambda worker's environment, the
 * CLI, the emulators) takes defaults from here, and "valid options are ..." is built from it.
 */
export const optionTable = {
  init: {
    target: {
      default: 'local',
      env: 'VOLLEY_TARGET',
      check: (where, v) => {
        if (v !== undefined && !TARGETS.includes(v as Target)) throw new UsageError(`unknown target ${JSON.stringify(v)} (from ${where}); valid targets are: ${TARGETS.join(', ')}`);
      },
      doc: 'Where tasks run: local, aws, localstack or emulator.',
    },
    inlineThresholdBytes: {
      default: 100 * 1024,
      check: num({ min: 0, integer: true }),
      doc: `Values up to this many bytes travel inside the task envelope; larger ones go through the object store. At most ${LAMBDA_MAX_INLINE_BYTES} on the aws, localstack and emulator targets (Lambda's 6 MB payload limit).`,
    },
    maxConcurrency: {
      byTarget: { aws: 100, localstack: 16, emulator: 16 },
      check: num({ min: 1, integer: true, allowInfinity: true }),
      doc: 'local: most tasks in flight at once, 32 per local.maxWorkers (the pool queues the rest); aws, localstack, emulator: most Lambda invocations in flight at once (short tasks share an invocation).',
    },
    taskTimeoutMs: { default: 300_000, check: num({ min: 1 }), doc: `Default per-task timeout in ms; at most ${LAMBDA_MAX_TIMEOUT_MS} on the aws, localstack and emulator targets.` },
    taskMemoryMB: { default: 1024, check: memoryCheck, doc: `Default per-task memory in MB (${LAMBDA_MIN_MEMORY_MB} to ${LAMBDA_MAX_MEMORY_MB}).` },
    shutdownTimeoutMs: {
      default: 30_000,
      check: num({ min: 0, max: MAX_TIMER_MS }),
      doc: "shutdown() waits at most this long for the store to remove the job's objects, then rejects naming what it could not remove (the bucket's lifecycle rule expires it).",
    },
    retryBaseDelayMs: { default: 100, check: num({ min: 0 }), doc: 'First backoff before a task is retried, in ms; it doubles per retry, with full jitter.' },
    retryMaxDelayMs: { default: 10_000, check: num({ min: 0 }), doc: 'Longest backoff before a retry, in ms.' },
    jobId: {
      check: (where, v) => {
        if (v !== undefined && (typeof v !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(v))) {
          throw new UsageError(`${where} must be 1-64 characters of letters, digits, '.', '_' or '-', got ${JSON.stringify(v)}`);
        }
      },
      doc: 'Id of this job; the store keeps its objects under it. Default: a random id.',
    },
    maxTaskDepth: {
      default: 16,
      check: num({ min: 0, integer: true }),
      doc: "How deep tasks may start tasks (the driver's tasks are at depth 0); a deeper .remote() inside a task throws a TaskDepthError.",
    },
    local: { check: checkObject, doc: 'Options of the embedded runtime.' },
    aws: { check: checkObject, doc: 'Options of the aws, localstack and emulator targets.' },
    progress: {
      default: 'auto',
      env: OBSERVE_ENV.progress,
      check: checkObserveOption('progress'),
      doc: "Progress on stderr: 'auto' (a TTY, for a job running over a second), true, false, or a function that receives the counts.",
    },
    timeline: { env: OBSERVE_ENV.timeline, check: checkObserveOption('timeline'), doc: 'Record the Chrome-trace timeline: true, a path written at shutdown(), or { path, maxTasks }.' },
    dashboard: { env: OBSERVE_ENV.dashboard, check: checkObserveOption('dashboard'), doc: 'Serve the live read-only dashboard on 127.0.0.1 and print its URL: true or { host, port }.' },
    cost: { check: checkObserveOption('cost'), doc: 'Count what the job costs on Lambda and S3 (rt.cost()): true or { architecture, prices }; on by default off the embedded runtime.' },
    summary: {
      default: 'auto',
      env: OBSERVE_ENV.summary,
      check: checkObserveOption('summary'),
      doc: "Print a one-screen summary at shutdown(): 'auto' (stderr is a TTY, or target aws), true or false.",
    },
  },
  local: {
    maxWorkers: { default: 32, check: num({ min: 1, integer: true }), doc: 'Most worker threads alive at once.' },
    minWorkers: { default: 0, check: num({ min: 0, integer: true }), doc: 'Workers started at init, before any task arrives.' },
    idleTimeoutMs: { default: 30_000, check: num({ min: 0 }), doc: 'An idle worker is stopped after this many ms.' },
  },
  aws: {
    region: {
      byTarget: { aws: undefined, localstack: 'us-east-1', emulator: 'us-east-1' },
      env: 'AWS_REGION',
      check: checkString,
      doc: "Region; else AWS_DEFAULT_REGION, else the SDK's chain (aws).",
    },
    functionName: {
      byTarget: { aws: undefined, localstack: undefined, emulator: 'volley-emulator-worker' },
      env: 'VOLLEY_FUNCTION_NAME',
      check: checkString,
      doc: 'The deployed worker function; else the stack output WorkerFunctionName.',
    },
    bucket: {
      byTarget: { aws: undefined, localstack: undefined, emulator: 'volley-emulator' },
      env: 'VOLLEY_BUCKET',
      check: checkString,
      doc: 'The object-store bucket; else the stack output BucketName.',
    },
    stackName: {
      byTarget: { aws: 'volley-dev', localstack: 'volley-local', emulator: 'volley-emulator' },
      env: 'VOLLEY_STACK',
      check: checkString,
      doc: 'The CloudFormation stack whose outputs name the function and bucket.',
    },
    endpoint: {
      byTarget: { aws: undefined, localstack: 'http://localhost.localstack.cloud:4566', emulator: undefined },
      env: 'AWS_ENDPOINT_URL',
      check: checkString,
      doc: 'One endpoint for every service (LocalStack; the variable is read for localstack only).',
    },
    lambdaEndpoint: { env: 'VOLLEY_LAMBDA_ENDPOINT', check: checkString, doc: 'Endpoint of the Lambda Invoke API alone (serverless-offline); else endpoint.' },
    s3Endpoint: { env: 'VOLLEY_S3_ENDPOINT', check: checkString, doc: 'Endpoint of S3 alone (s3rver); else endpoint.' },
    keyPrefix: {
      default: 'volley/',
      check: (where, v) => {
        if (v !== undefined && (typeof v !== 'string' || !/^([A-Za-z0-9._-]+\/)*$/.test(v))) {
          throw new UsageError(`${where} must be '' or path segments each ending in '/', such as 'volley/', got ${JSON.stringify(v)}`);
        }
      },
      doc: 'Prefix of every key volley writes in the bucket (the lifecycle rule expires it).',
    },
    multipartThresholdBytes: {
      default: 16 * 1024 * 1024,
      // s3rver writes every part, then reads them all back into the object at completion: measured
      // about 2x a single PUT at 100 MB (bench/aws-path.ts), so the emulator uploads whole up to 256 MiB.
      byTarget: { aws: 16 * 1024 * 1024, localstack: 16 * 1024 * 1024, emulator: 256 * 1024 * 1024 },
      env: 'VOLLEY_MULTIPART_THRESHOLD_BYTES',
      check: num({ min: S3_MIN_PART, integer: true }),
      doc: "Objects larger than this are uploaded in parts (the emulator's s3rver: 256 MiB, since it copies parts at completion); the variable is the Lambda worker's.",
    },
    throttleBaseDelayMs: { default: 100, check: num({ min: 1 }), doc: 'A throttled invocation is retried with backoff from this delay, in ms.' },
    throttleMaxDelayMs: { default: 5_000, check: num({ min: 1, max: MAX_TIMER_MS }), doc: 'Longest backoff between throttled retries, in ms.' },
    throttleGiveUpMs: { default: 600_000, check: num({ min: 0 }), doc: 'Give up on a task still throttled after this many ms.' },
    invokeGraceMs: { default: 30_000, check: num({ min: 0, max: LAMBDA_MAX_TIMEOUT_MS }), doc: "The driver stops waiting for an invocation this long after the task's timeoutMs." },
    connectTimeoutMs: { default: 5_000, check: num({ min: 1, max: MAX_TIMER_MS }), doc: 'Every connection to S3 or Lambda must be made within this many ms.' },
    s3RequestTimeoutMs: { default: 60_000, check: num({ min: 1, max: MAX_TIMER_MS }), doc: 'An S3 request (one part of a multipart upload) must be answered within this many ms.' },
    s3IdleTimeoutMs: { default: 20_000, check: num({ min: 1, max: MAX_TIMER_MS }), doc: 'An S3 transfer fails when no byte moves for this many ms (progress for large bodies).' },
    s3Client: { check: anyValue, doc: 'An S3 client to use as it is.' },
    s3ClientConfig: { check: anyValue, doc: 'Extra config for the S3 client volley builds.' },
    lambdaClient: { check: anyValue, doc: 'A Lambda client to use as it is.' },
    lambdaClientConfig: { check: anyValue, doc: 'Extra config for the Lambda client volley builds.' },
  },
  task: {
    name: {
      check: (where, v) => {
        if (v !== undefined && (typeof v !== 'string' || v.trim() === '')) throw new UsageError(`${where} must be a non-empty string`);
      },
      doc: "Task name, its identity across driver and workers. Default: the function's name.",
    },
    timeoutMs: { check: num({ min: 1 }), doc: "Wall-clock limit for one run of the task, in ms. Default: the runtime's taskTimeoutMs." },
    memoryMB: { check: memoryCheck, doc: "Memory for the task's worker in MB (128 to 10240). Default: the runtime's taskMemoryMB." },
    maxRetries: { default: 3, check: num({ min: -1, integer: true }), doc: 'Runs again after a system failure, and rebuilds of a lost result; -1 forever, 0 never.' },
    retryExceptions: {
      default: false,
      check: (where, v) => {
        const ok = v === undefined || typeof v === 'boolean' || typeof v === 'function' || (Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== ''));
        if (!ok) throw new UsageError(`${where} must be true, false, a list of error names, or a predicate (err) => boolean, got ${String(v)}`);
      },
      doc: "Retry the task's own exceptions too: true, a list of error names, or a predicate on the TaskError (run in the driver). Default: false.",
    },
  },
  get: {
    timeoutMs: { check: anyValue, doc: 'Give up after this many ms with a GetTimeoutError. Default: wait forever.' },
  },
  wait: {
    numReturns: { check: anyValue, doc: 'How many refs must be ready. Default: 1.' },
    timeoutMs: { check: anyValue, doc: 'Return after this many ms even if fewer are ready. Default: wait forever.' },
  },
} as const satisfies Record<string, Record<string, OptionRow>>;

export type OptionGroup = keyof typeof optionTable;

/** Credentials of the emulated targets (not options: s3rver accepts only its own pair; LocalStack any). */
const targetCredentials: Record<AwsTarget, { accessKeyId: string; secretAccessKey: string } | undefined> = {
  aws: undefined,
  localstack: { accessKeyId: 'test', secretAccessKey: 'test' },
  emulator: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
};

/** The table's default of an option, for a target when it has one per target. */
export function optionDefault<G extends OptionGroup>(group: G, key: keyof (typeof optionTable)[G] & string, target?: AwsTarget): unknown {
  const row = (optionTable[group] as Record<string, OptionRow>)[key]!;
  return row.byTarget && target ? row.byTarget[target] : row.default;
}

/**
 * Tasks in flight per local worker: the pool queues what its workers cannot take yet, and hands
 * short tasks to a worker several at a time, which needs a queue to draw from.
 */
const LOCAL_TASKS_PER_WORKER = 32;

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

/** Checks an options object against its group of the table: known keys, then each value. */
export function checkOptions(group: OptionGroup, where: (key: string) => string, given: object | undefined, keysWhere: string): void {
  const rows = optionTable[group] as Record<string, OptionRow>;
  checkKeys(keysWhere, given, Object.keys(rows));
  if (!given) return;
  for (const [k, v] of Object.entries(given)) rows[k]!.check(where(k), v);
}

export function resolveTaskOptionsInput(where: string, o: TaskOptions | undefined): TaskOptions {
  checkOptions('task', (k) => `${where}: ${k}`, o, where);
  if (!o) return {};
  return { ...o };
}

/**
 * `n` bytes from the system's CSPRNG, as base64url. node:crypto is looked up when an id is made,
 * not imported: every worker thread imports this module (through 'volley'), and node:crypto's
 * module graph costs each thread milliseconds of CPU at start-up, for ids only the driver makes.
 * (process.getBuiltinModule is Node 20.16+; before it, Web Crypto's global, which costs more to load.)
 */
function randomBase64url(n: number): string {
  const nodeCrypto = process.getBuiltinModule?.('node:crypto');
  const bytes = nodeCrypto ? nodeCrypto.randomBytes(n) : globalThis.crypto.getRandomValues(new Uint8Array(n));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** A job id: the time, for people, and 96 random bits from the system's CSPRNG, so ids never collide. */
function randomJobId(): string {
  const d = new Date();
  const stamp = d.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${stamp}-${randomBase64url(12)}`;
}

/**
 * A run id: 128 random bits from the CSPRNG, new for every Runtime. A run's objects live under
 * `<keyPrefix>jobs/<jobId>/<runId>/`, so a run never sees objects another run left under the
 * same job id, and nobody can name its keys without being told them.
 */
export function randomRunId(): string {
  return randomBase64url(16);
}

export function resolveInitOptions(o: InitOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedInitOptions {
  checkKeys('init()', o, Object.keys(optionTable.init));
  const opts = o ?? {};
  const target = (opts.target ?? env[optionTable.init.target.env] ?? optionTable.init.target.default) as Target;
  optionTable.init.target.check(opts.target ? 'init({ target })' : optionTable.init.target.env, target);
  checkOptions('local', (k) => `init({ local: { ${k} } })`, opts.local, 'init({ local })');
  const local: ResolvedLocalOptions = {
    maxWorkers: opts.local?.maxWorkers ?? optionTable.local.maxWorkers.default,
    minWorkers: opts.local?.minWorkers ?? optionTable.local.minWorkers.default,
    idleTimeoutMs: opts.local?.idleTimeoutMs ?? optionTable.local.idleTimeoutMs.default,
  };
  if (local.minWorkers > local.maxWorkers) {
    throw new UsageError(`init({ local }): minWorkers (${local.minWorkers}) cannot exceed maxWorkers (${local.maxWorkers})`);
  }
  for (const k of ['inlineThresholdBytes', 'maxConcurrency', 'taskTimeoutMs', 'taskMemoryMB', 'shutdownTimeoutMs', 'retryBaseDelayMs', 'retryMaxDelayMs', 'jobId', 'maxTaskDepth'] as const) {
    optionTable.init[k].check(`init({ ${k} })`, opts[k]);
  }
  if (opts.taskTimeoutMs !== undefined) checkTaskTimeoutForTarget(target, 'init({ taskTimeoutMs })', opts.taskTimeoutMs);
  if (target !== 'local' && opts.inlineThresholdBytes !== undefined && opts.inlineThresholdBytes > LAMBDA_MAX_INLINE_BYTES) {
    throw new UsageError(
      `init({ inlineThresholdBytes }) is ${opts.inlineThresholdBytes}, but on target '${target}' a value travels inline in a Lambda request or answer of at most 6 MB (as base64): the largest threshold there is ${LAMBDA_MAX_INLINE_BYTES}; larger values go through S3 anyway`,
    );
  }
  const observe = resolveObserveOptions(opts, target, env);
  if (target === 'local' && opts.aws !== undefined) {
    throw new UsageError(`init({ aws }) was given but the target is 'local'; set target to 'aws', 'localstack' or 'emulator' (or VOLLEY_TARGET), or drop the aws options`);
  }
  const aws = target === 'local' ? undefined : resolveAwsOptions(target, opts.aws, env);
  checkCostRegion(observe.cost, aws?.region ?? 'us-east-1');
  return {
    target,
    inlineThresholdBytes: opts.inlineThresholdBytes ?? optionTable.init.inlineThresholdBytes.default,
    maxConcurrency: opts.maxConcurrency ?? (target === 'local' ? local.maxWorkers * LOCAL_TASKS_PER_WORKER : optionTable.init.maxConcurrency.byTarget[target]),
    taskTimeoutMs: opts.taskTimeoutMs ?? optionTable.init.taskTimeoutMs.default,
    taskMemoryMB: opts.taskMemoryMB ?? optionTable.init.taskMemoryMB.default,
    shutdownTimeoutMs: opts.shutdownTimeoutMs ?? optionTable.init.shutdownTimeoutMs.default,
    retryBaseDelayMs: opts.retryBaseDelayMs ?? optionTable.init.retryBaseDelayMs.default,
    retryMaxDelayMs: opts.retryMaxDelayMs ?? optionTable.init.retryMaxDelayMs.default,
    jobId: opts.jobId ?? randomJobId(),
    maxTaskDepth: opts.maxTaskDepth ?? optionTable.init.maxTaskDepth.default,
    local,
    aws,
    observe,
  };
}

function checkUrl(where: string, v: string | undefined): void {
  if (v === undefined) return;
  try {
    new URL(v);
  } catch {
    throw new UsageError(`${where} must be a URL such as http://127.0.0.1:4566, got ${JSON.stringify(v)}`);
  }
}

/** Resolves the aws block for an AWS-like target: options, then environment, then the options table. */
export function resolveAwsOptions(target: AwsTarget, o: AwsOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedAwsOptions {
  const a = (o ?? {}) as AwsBaseOptions & { s3Client?: S3Client; s3ClientConfig?: S3ClientConfig; lambdaClient?: LambdaClient; lambdaClientConfig?: LambdaClientConfig };
  checkKeys('init({ aws })', o, Object.keys(optionTable.aws));
  if (a.s3Client !== undefined && a.s3ClientConfig !== undefined) {
    throw new UsageError('init({ aws }) got both s3Client and s3ClientConfig; give the client, or a config for volley to build one, not both');
  }
  if (a.lambdaClient !== undefined && a.lambdaClientConfig !== undefined) {
    throw new UsageError('init({ aws }) got both lambdaClient and lambdaClientConfig; give the client, or a config for volley to build one, not both');
  }
  checkOptions('aws', (k) => `init({ aws: { ${k} } })`, o, 'init({ aws })');
  const t = optionTable.aws;
  const endpoint = a.endpoint ?? (target === 'localstack' ? env[t.endpoint.env] : undefined) ?? t.endpoint.byTarget[target];
  const lambdaEndpoint = a.lambdaEndpoint ?? env[t.lambdaEndpoint.env] ?? endpoint;
  const s3Endpoint = a.s3Endpoint ?? env[t.s3Endpoint.env] ?? endpoint;
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
    region: a.region ?? env[t.region.env] ?? env.AWS_DEFAULT_REGION ?? t.region.byTarget[target],
    functionName: a.functionName ?? env[t.functionName.env] ?? t.functionName.byTarget[target],
    bucket: a.bucket ?? env[t.bucket.env] ?? t.bucket.byTarget[target],
    stackName: a.stackName ?? env[t.stackName.env] ?? t.stackName.byTarget[target],
    lambdaEndpoint,
    s3Endpoint,
    forcePathStyle: s3Endpoint !== undefined,
    // LocalStack takes any key pair; use the environment's when it has one. s3rver takes only its own.
    credentials: target === 'emulator' || (target === 'localstack' && !hasStaticKeys) ? targetCredentials[target] : undefined,
    keyPrefix: a.keyPrefix ?? t.keyPrefix.default,
    multipartThresholdBytes: a.multipartThresholdBytes ?? (t.multipartThresholdBytes.byTarget[target] as number),
    throttleBaseDelayMs: a.throttleBaseDelayMs ?? t.throttleBaseDelayMs.default,
    throttleMaxDelayMs: a.throttleMaxDelayMs ?? t.throttleMaxDelayMs.default,
    throttleGiveUpMs: a.throttleGiveUpMs ?? t.throttleGiveUpMs.default,
    invokeGraceMs: a.invokeGraceMs ?? t.invokeGraceMs.default,
    connectTimeoutMs: a.connectTimeoutMs ?? t.connectTimeoutMs.default,
    s3RequestTimeoutMs: a.s3RequestTimeoutMs ?? t.s3RequestTimeoutMs.default,
    s3IdleTimeoutMs: a.s3IdleTimeoutMs ?? t.s3IdleTimeoutMs.default,
    s3Client: a.s3Client,
    s3ClientConfig: a.s3ClientConfig,
    lambdaClient: a.lambdaClient,
    lambdaClientConfig: a.lambdaClientConfig,
  };
}
