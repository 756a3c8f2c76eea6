/** Which failed runs are run again, how long to wait, and what the final error says. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DependencyError, ObjectStoreError, TaskCancelledError, TaskError, TaskTimeoutError, WorkerCrashedError } from 'volley';
import { attemptFailure, isSystemFailure, retryDelay, shouldRetry, withAttempts } from '../../sdk/retry.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';

const userError = (name = 'FetchError') => TaskError.fromRemote('f', 't1', { name, message: 'boom' }, 'user');

describe('retry policy', () => {
  it('retries system failures within maxRetries (-1: forever, 0: never)', () => {
    const crash = new WorkerCrashedError('f', 't1', 'exit 1');
    assert.equal(shouldRetry(crash, 0, 3, undefined), true);
    assert.equal(shouldRetry(crash, 2, 3, undefined), true);
    assert.equal(shouldRetry(crash, 3, 3, undefined), false);
    assert.equal(shouldRetry(crash, 0, 0, undefined), false);
    assert.equal(shouldRetry(crash, 1000, -1, undefined), true);
    assert.equal(shouldRetry(new TaskTimeoutError('f', 't1', 10), 0, 3, undefined), true, 'a timeout is a system failure');
    const s3down = TaskError.fromRemote('f', 't1', { name: 'ObjectStoreError', message: 'SlowDown', code: 'OBJECT_STORE', retryable: true }, 'infrastructure');
    assert.equal(shouldRetry(s3down, 0, 3, undefined), true, 'a transient store fault in the worker');
    const notFound = TaskError.fromRemote('f', 't1', { name: 'TaskNotFoundError', message: 'x', code: 'TASK_NOT_FOUND', retryable: false }, 'infrastructure');
    assert.equal(shouldRetry(notFound, 0, 3, true), false, 'a configuration error repeats');
  });

  it('never retries a failed dependency, a cancel or a shutdown, whatever retryExceptions says', () => {
    assert.equal(shouldRetry(new DependencyError('g', 't2', new WorkerCrashedError('f', 't1', 'x')), 0, 3, true), false);
    assert.equal(shouldRetry(new TaskCancelledError('f', 't1', 'while it ran'), 0, 3, true), false);
    const shut = new TaskError('x', { functionName: 'f', taskId: 't1', fault: 'infrastructure', code: 'SHUT_DOWN', retryable: true });
    assert.equal(shouldRetry(shut, 0, 3, true), false);
  });

  it("retries the task's own exceptions only as retryExceptions says", () => {
    assert.equal(shouldRetry(userError(), 0, 3, undefined), false);
    assert.equal(shouldRetry(userError(), 0, 3, false), false);
    assert.equal(shouldRetry(userError(), 0, 3, true), true);
    assert.equal(shouldRetry(userError(), 3, 3, true), false);
    assert.equal(shouldRetry(userError('FetchError'), 0, 3, ['FetchError']), true);
    assert.equal(shouldRetry(userError('TypeError'), 0, 3, ['FetchError']), false);
    assert.equal(
      shouldRetry(userError(), 0, 3, (e) => e.remote?.message === 'boom'),
      true,
    );
    assert.equal(
      shouldRetry(userError(), 0, 3, () => {
        throw new Error('bad predicate');
      }),
      false,
    );
  });

  it('backs off exponentially with jitter, capped', () => {
    const lo = () => 0;
    const hi = () => 0.999999;
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelay(n, 100, 10_000, lo)),
      [50, 100, 200, 400],
    );
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelay(n, 100, 10_000, hi)),
      [99, 199, 399, 799],
    );
    assert.equal(retryDelay(40, 100, 10_000, hi), 9999);
    assert.ok(retryDelay(1, 100, 10_000, lo) > 0, 'never at once');
  });

  it("the final error lists every run and keeps the last one's class and fault", () => {
    const runs = [new WorkerCrashedError('f', 't1', 'exit 1'), new TaskTimeoutError('f', 't1', 50), new WorkerCrashedError('f', 't1', 'out of memory')];
    const last = runs[2]!;
    const err = withAttempts(
      last,
      runs.map((e, i) => attemptFailure(i + 1, e)),
    );
    assert.equal(err, last);
    assert.equal(err.fault, 'infrastructure');
    assert.deepEqual(
      err.attempts?.map((a) => [a.attempt, a.code]),
      [
        [1, 'WORKER_CRASHED'],
        [2, 'TASK_TIMEOUT'],
        [3, 'WORKER_CRASHED'],
      ],
    );
    assert.match(err.message, /out of memory\) \[after 3 attempts — 1: WorkerCrashedError \(WORKER_CRASHED\); 2: TaskTimeoutError \(TASK_TIMEOUT\); 3: WorkerCrashedError \(WORKER_CRASHED\)\]$/);
    assert.ok(err.stack?.startsWith(`WorkerCrashedError: ${err.message}`));
    assert.equal(attemptFailure(1, userError()).name, 'FetchError');
  });
});

describe('MemoryStore', () => {
  it('keeps the first write of a key, like S3 with If-None-Match: *', async () => {
    const s = new MemoryStore();
    await s.put('k', new Uint8Array([1]));
    await s.put('k', new Uint8Array([2]));
    assert.deepEqual([...(await s.get('k'))], [1]);
    await assert.rejects(s.get('gone'), (e: unknown) => e instanceof ObjectStoreError && e.code === 'OBJECT_MISSING');
  });
});

describe('retry policy: what counts, and what the final error says', () => {
  const infra = (code: string) => new TaskError('x', { functionName: 'f', taskId: 't1', fault: 'infrastructure', code: code as never, retryable: true });

  it('a lost object, a failed dependency, a cancel and a shutdown are never system failures, even when marked retryable', () => {
    for (const code of ['SHUT_DOWN', 'DEPENDENCY_FAILED', 'TASK_CANCELLED', 'OBJECT_LOST']) {
      assert.equal(isSystemFailure(infra(code)), false, code);
      assert.equal(shouldRetry(infra(code), 0, 3, true), false, code);
    }
    assert.equal(isSystemFailure(infra('WORKER_CRASHED')), true);
  });

  it("the task's own exception is not a system failure, whatever it says about itself", () => {
    const own = new TaskError('Task f (t1) failed: E: x', { functionName: 'f', taskId: 't1', fault: 'user', retryable: true });
    assert.equal(isSystemFailure(own), false);
    assert.equal(shouldRetry(own, 0, 3, undefined), false);
  });

  it("a run's failure is recorded without the task's name, under the remote exception's name for the task's own errors", () => {
    const crash = attemptFailure(2, new WorkerCrashedError('f', 't1', 'exit 1'));
    assert.equal(crash.attempt, 2);
    assert.equal(crash.name, 'WorkerCrashedError');
    assert.equal(crash.code, 'WORKER_CRASHED');
    assert.equal(crash.fault, 'infrastructure');
    assert.ok(!crash.message.startsWith('Task f (t1)'), crash.message);
    assert.equal(`Task f (t1) ${crash.message}`, new WorkerCrashedError('f', 't1', 'exit 1').message);
    const s3down = TaskError.fromRemote('f', 't1', { name: 'ObjectStoreError', message: 'SlowDown', code: 'OBJECT_STORE', retryable: true }, 'infrastructure');
    assert.equal(attemptFailure(1, s3down).name, s3down.name, 'an infrastructure failure keeps the error class');
    const other = new TaskError('unrelated wording', { functionName: 'f', taskId: 't1', fault: 'infrastructure' });
    assert.equal(attemptFailure(1, other).message, 'unrelated wording');
    const user = attemptFailure(1, userError('TypeError'));
    assert.deepEqual([user.name, user.fault, user.message], ['TypeError', 'user', 'failed: TypeError: boom']);
  });

  it('one run leaves the message alone; two or more are summed up in the message and the first line of the stack', () => {
    const once = new WorkerCrashedError('f', 't1', 'exit 1');
    const msg = once.message;
    const stack = once.stack;
    withAttempts(once, [attemptFailure(1, once)]);
    assert.equal(once.message, msg);
    assert.equal(once.stack, stack);
    assert.equal(once.attempts?.length, 1);

    const last = userError('TypeError');
    const before = last.stack!;
    const head = `${last.name}: ${last.message}`;
    assert.ok(before.startsWith(head));
    const err = withAttempts(last, [attemptFailure(1, new WorkerCrashedError('f', 't1', 'exit 1')), attemptFailure(2, last)]);
    assert.equal(err.message, 'Task f (t1) failed: TypeError: boom [after 2 attempts — 1: WorkerCrashedError (WORKER_CRASHED); 2: TypeError]');
    assert.equal(err.stack, `${err.name}: ${err.message}${before.slice(head.length)}`);
  });

  it("attempts stay off the error's printed fields, and can be set again", () => {
    const err = withAttempts(userError(), [attemptFailure(1, userError()), attemptFailure(2, userError())]);
    assert.equal(Object.keys(err).includes('attempts'), false);
    assert.doesNotMatch(JSON.stringify(err), /attempts/);
    withAttempts(err, [attemptFailure(3, userError())]);
    assert.equal(err.attempts?.[0]?.attempt, 3);
    (err as { attempts?: unknown }).attempts = [];
    assert.deepEqual(err.attempts, []);
  });
});
