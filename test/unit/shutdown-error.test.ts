/**
 * After shutdown, every invoker refuses a task with the one error the SDK throws for a task that
 * was not run because the runtime shut down (errors.ts `shutDownBeforeRun`): the embedded pool
 * and the Lambda invoker alike. No request is sent: the Lambda client points at a closed port.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { TaskError } from 'volley';
import { LambdaInvoker } from '../../sdk/aws/lambda-invoker.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { WorkerPool } from '../../sdk/local/pool.js';
import { resolveInitOptions } from '../../sdk/options.js';
import type { TaskEnvelope } from '../../sdk/protocol.js';

const env = { fn: 'fit', taskId: 't-9' } as TaskEnvelope;
const options = { timeoutMs: 1000, memoryMB: 128 };

/** What an invoker's invoke() rejects with. */
async function refusal(invoke: () => Promise<unknown>): Promise<TaskError> {
  const err = await invoke().then(
    () => assert.fail('invoke() after close() resolved'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TaskError, String(err));
  return err;
}

const fields = (e: TaskError) => [e.name, e.message, e.code, e.fault, e.retryable, e.functionName, e.taskId];

describe('invoke() after close()', () => {
  it('the Lambda invoker and the embedded pool refuse a task with the same error', async () => {
    const pool = new WorkerPool(resolveInitOptions({}, {}).local, new MemoryStore());
    await pool.close();
    const fromPool = await refusal(() => pool.invoke(env, options));

    const client = new LambdaClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const invoker = new LambdaInvoker(client, new MemoryStore(), {
      functionName: 'volley-worker',
      invokeGraceMs: 1000,
      baseDelayMs: 5,
      maxDelayMs: 20,
      giveUpMs: 100,
      ownsClient: true,
      maxInvocations: 4,
    });
    await invoker.close();
    const fromLambda = await refusal(() => invoker.invoke(env, options));

    assert.deepEqual(fields(fromLambda), fields(fromPool));
    assert.deepEqual(fields(fromLambda), ['TaskError', 'Task fit (t-9) was not run: the runtime was shut down before this task ran', 'SHUT_DOWN', 'infrastructure', false, 'fit', 't-9']);
  });
});
