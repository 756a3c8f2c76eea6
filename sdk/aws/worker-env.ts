/**
 * The one place the Lambda worker reads its environment. serverless.yml sets these variables;
 * a missing one is a ConfigError saying which and how to fix it.
 */
import { ConfigError } from '../errors.js';
import { optionTable } from '../options.js';

export interface WorkerEnv {
  /** The object-store bucket (VOLLEY_BUCKET). */
  bucket: string;
  /** Objects larger than this go up in parts (VOLLEY_MULTIPART_THRESHOLD_BYTES; default from the options table, 16 MiB). */
  multipartThresholdBytes: number;
  /** A custom S3 endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (LocalStack sets it inside its Lambdas). */
  s3Endpoint?: string;
  /** A custom Lambda endpoint, for tasks that start tasks: AWS_ENDPOINT_URL_LAMBDA, else AWS_ENDPOINT_URL. */
  lambdaEndpoint?: string;
  region?: string;
  /** Memory of this function in MB (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), when known. */
  memoryMB?: number;
  functionName?: string;
  /** Where this worker's logs are, when known. */
  logs?: string;
  /**
   * Prefix of every key volley writes (VOLLEY_KEY_PREFIX, default 'volley/', as serverless.yml
   * sets it and scopes the role to it): the worker touches only `<prefix>jobs/<job>/` keys.
   */
  keyPrefix: string;
  /**
   * Run each task in a worker thread that is terminated at the task's deadline
   * (VOLLEY_TASK_THREAD, default 'on'); 'off' runs tasks on the handler's thread, where only
   * Lambda's function timeout stops code that never yields.
   */
  taskThread: boolean;
}

function required(env: NodeJS.ProcessEnv, name: string, why: string): string {
  const v = env[name];
  if (v === undefined || v === '' || v === '[object Object]') {
    throw new ConfigError(`the worker's environment variable ${name} is not set (${why}); serverless.yml sets it: deploy the worker with npx volley deploy, or set it on the function`);
  }
  return v;
}

export function readWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  const bucket = required(env, 'VOLLEY_BUCKET', 'the bucket of the object store');
  const row = optionTable.aws.multipartThresholdBytes;
  const threshold = env[row.env];
  const multipartThresholdBytes = threshold === undefined || threshold === '' ? row.default : Number(threshold);
  try {
    row.check(row.env, multipartThresholdBytes);
  } catch {
    throw new ConfigError(`the worker's environment variable ${row.env} must be an integer >= 5242880 (S3's smallest part), got ${JSON.stringify(threshold)}`);
  }
  const keyPrefix = env.VOLLEY_KEY_PREFIX ?? (optionTable.aws.keyPrefix.default as string);
  try {
    optionTable.aws.keyPrefix.check('VOLLEY_KEY_PREFIX', keyPrefix);
  } catch (err) {
    throw new ConfigError(`the worker's environment variable ${(err as Error).message}`);
  }
  const thread = env.VOLLEY_TASK_THREAD ?? 'on';
  if (thread !== 'on' && thread !== 'off') throw new ConfigError(`the worker's environment variable VOLLEY_TASK_THREAD must be 'on' or 'off', got ${JSON.stringify(thread)}`);
  const mem = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  const group = env.AWS_LAMBDA_LOG_GROUP_NAME;
  const stream = env.AWS_LAMBDA_LOG_STREAM_NAME;
  return {
    bucket,
    multipartThresholdBytes,
    s3Endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
    lambdaEndpoint: env.AWS_ENDPOINT_URL_LAMBDA || env.AWS_ENDPOINT_URL || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    memoryMB: Number.isFinite(mem) && mem > 0 ? mem : undefined,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME || undefined,
    logs: group ? `CloudWatch log group ${group}${stream ? `, stream ${stream}` : ''}` : undefined,
    keyPrefix,
    taskThread: thread === 'on',
  };
}
