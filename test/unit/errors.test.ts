/**
 * The error model: every error volley throws carries a stable `code` and a `retryable` flag,
 * and both survive the trip from a worker to the driver in an error result.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  DependencyError,
  DuplicateTaskError,
  GetTimeoutError,
  ObjectStoreError,
  ProtocolError,
  SerializationError,
  TaskError,
  TaskNotFoundError,
  TaskTimeoutError,
  ThrottledError,
  UsageError,
  VolleyError,
  WorkerCrashedError,
} from 'volley';
import { errorResult, fromWire, toWire, validateResultEnvelope } from '../../sdk/protocol.js';

describe('error codes and retryable', () => {
  it('each error class has its own stable code and retryable default', () => {
    const cases: Array<[VolleyError, string, boolean]> = [
      [new UsageError('u'), 'USAGE', false],
      [new ConfigError('c'), 'CONFIG', false],
      [new SerializationError('s', 'args[0]'), 'SERIALIZATION', false],
      [new DuplicateTaskError('d'), 'DUPLICATE_TASK', false],
      [new TaskNotFoundError('n'), 'TASK_NOT_FOUND', false],
      [new ProtocolError('p'), 'PROTOCOL', false],
      [new TaskError('t', { functionName: 'f', taskId: 't1', fault: 'user' }), 'TASK_FAILED', false],
      [new TaskError('t', { functionName: 'f', taskId: 't1', fault: 'infrastructure' }), 'WORKER_FAILED', false],
      [new TaskTimeoutError('f', 't1', 10), 'TASK_TIMEOUT', true],
      [new WorkerCrashedError('f', 't1', 'exit 1'), 'WORKER_CRASHED', true],
      [new GetTimeoutError(10, ['a']), 'GET_TIMEOUT', true],
      [new ObjectStoreError('o', 'k'), 'OBJECT_STORE', false],
      [new ThrottledError(3, 1000, { cause: undefined }), 'THROTTLED', true],
    ];
    for (const [err, code, retryable] of cases) {
      assert.ok(err instanceof VolleyError, err.name);
      assert.equal(err.code, code, err.name);
      assert.equal(err.retryable, retryable, err.name);
    }
    assert.ok(new TaskNotFoundError('n') instanceof ConfigError);
    assert.equal(new ObjectStoreError('o', 'k', { retryable: true }).retryable, true);
  });

  it('a DependencyError is not retryable itself, whatever its upstream was', () => {
    const upstream = new WorkerCrashedError('f', 't1', 'exit 1');
    const dep = new DependencyError('g', 't2', upstream);
    assert.equal(dep.code, 'DEPENDENCY_FAILED');
    assert.equal(dep.retryable, false);
    assert.equal(dep.cause, upstream);
  });

  it('code and retryable travel in an error result over the JSON wire and back into a TaskError', () => {
    const res = errorResult('t1', new ObjectStoreError('store is down', 'k', { retryable: true }), 'infrastructure');
    const back = validateResultEnvelope(fromWire(JSON.parse(JSON.stringify(toWire(res)))));
    assert.equal(back.kind, 'error');
    if (back.kind !== 'error') return;
    assert.equal(back.error.code, 'OBJECT_STORE');
    assert.equal(back.error.retryable, true);
    const err = TaskError.fromRemote('f', 't1', back.error, back.fault);
    assert.equal(err.fault, 'infrastructure');
    assert.equal(err.code, 'WORKER_FAILED');
    assert.equal(err.retryable, true);
    assert.equal(err.remote?.code, 'OBJECT_STORE');
  });

  it("a user's exception is never retryable, whatever it says about itself", () => {
    const thrown = Object.assign(new Error('bad input'), { code: 'ERR_BAD' });
    const res = errorResult('t1', thrown, 'user');
    assert.equal(res.kind === 'error' && res.error.code, 'ERR_BAD');
    assert.equal(res.kind === 'error' && res.error.retryable, undefined);
    const err = TaskError.fromRemote('f', 't1', { ...(res.kind === 'error' ? res.error : { name: '', message: '' }), retryable: true }, 'user');
    assert.equal(err.code, 'TASK_FAILED');
    assert.equal(err.retryable, false);
  });
});
