/**
 * The Lambda worker's request handling (`handlers/worker.ts` is its thin entry point): read the
 * environment through one helper, validate the event, run the task with the same worker-side
 * code as the embedded runtime, answer the result.
 *
 * A task's own exception is a result value (re-thrown by `get` with the remote stack), never a
 * Lambda FunctionError. A task past its timeout is answered as a timeout; Lambda's function
 * timeout (serverless.yml) is the hard stop for code that never yields.
 */
import type { ObjectStore } from '../backend.js';
import { makeS3Client } from './clients.js';
import { S3Store } from './s3-store.js';
import { validateLambdaRequest, type LambdaResponse } from './wire.js';
import { readWorkerEnv, type WorkerEnv } from './worker-env.js';
import { ConfigError, TaskTimeoutError } from '../errors.js';
import { errorResult, fromWire, toWire, type ResultEnvelope } from '../protocol.js';
import { executeTask } from '../worker/execute.js';
import type { RunningTask } from '../worker/task-context.js';

/** The part of Lambda's context object the handler uses. */
export interface LambdaContextLike {
  logGroupName?: string;
  logStreamName?: string;
  awsRequestId?: string;
}

export type Handler = (event: unknown, context?: LambdaContextLike) => Promise<LambdaResponse>;

function taskField(event: unknown, field: 'taskId' | 'fn'): string {
  const v = (event as { task?: Record<string, unknown> } | null)?.task?.[field];
  return typeof v === 'string' ? v : '?';
}

/**
 * Makes the handler. The environment is read and the S3 client built on the first invocation
 * and kept for warm ones; both live in this closure, not in module state.
 */
export function createHandler(env: NodeJS.ProcessEnv = process.env, storeFor?: (cfg: WorkerEnv) => ObjectStore): Handler {
  let setup: { cfg: WorkerEnv; store: ObjectStore } | undefined;
  const init = () => {
    if (!setup) {
      const cfg = readWorkerEnv(env);
      const store =
        storeFor?.(cfg) ??
        new S3Store(makeS3Client({ region: cfg.region, endpoint: cfg.s3Endpoint, maxSockets: 64, forcePathStyle: cfg.s3Endpoint !== undefined }), cfg.bucket, {
          multipartThresholdBytes: cfg.multipartThresholdBytes,
        });
      setup = { cfg, store };
    }
    return setup;
  };

  return async (event, context) => {
    const taskId = taskField(event, 'taskId');
    let result: ResultEnvelope;
    let logs: string | undefined;
    try {
      const { cfg, store } = init();
      logs = context?.logGroupName
        ? `CloudWatch log group ${context.logGroupName}${context.logStreamName ? `, stream ${context.logStreamName}` : ''}${context.awsRequestId ? `, request id ${context.awsRequestId}` : ''}`
        : cfg.logs;
      const req = validateLambdaRequest(event);
      if (cfg.memoryMB !== undefined && req.memoryMB > cfg.memoryMB) {
        throw new ConfigError(
          `the task asked for ${req.memoryMB} MB but Lambda function ${cfg.functionName ?? '(worker)'} has ${cfg.memoryMB} MB; ` +
            `deploy it with more (npx volley deploy --memory ${req.memoryMB}) or lower the task's memoryMB`,
        );
      }
      let timer: NodeJS.Timeout | undefined;
      let running: RunningTask | undefined;
      const timedOut = new Promise<ResultEnvelope>((resolve) => {
        timer = setTimeout(() => {
          const err = new TaskTimeoutError(taskField(event, 'fn'), taskId, req.timeoutMs);
          // The task's signal tells it to stop: the invocation is billed until it returns.
          running?.abort(err);
          resolve(errorResult(taskId, err, 'infrastructure'));
        }, req.timeoutMs);
      });
      try {
        result = await Promise.race([executeTask(fromWire(req.task), { store, onStart: (t) => (running = t) }), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      // A bad event or a misconfigured worker: the task's failure, not a Lambda FunctionError.
      result = errorResult(taskId, err, 'infrastructure');
    }
    const out = toWire(result) as LambdaResponse;
    if (logs) out.logs = logs;
    return out;
  };
}
