/**
 * What the errors tell a user: messages that say what failed and how to fix it, the remote
 * stack, the root cause of a chain of dependency failures, what a thrown non-Error becomes,
 * and `instanceof` across the two copies of the library a process may load (ESM and CJS).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import * as esm from 'volley';
import { ConfigError, DependencyError, GetTimeoutError, ObjectStoreError, TaskError, TaskTimeoutError, ThrottledError, UsageError, VolleyError, WorkerCrashedError } from 'volley';
import { rootTaskError, toRemoteErrorInfo } from '../../sdk/errors.js';

const cjs = createRequire(import.meta.url)('volley') as typeof esm;

describe('error messages', () => {
  it('TaskError.fromRemote names the task and the remote error, and keeps the remote stack', () => {
    const err = TaskError.fromRemote('train', 't-7', { name: 'RangeError', message: 'bad rate', stack: 'RangeError: bad rate\n    at train (tasks.js:3:9)' }, 'user', 'log group g');
    assert.equal(err.message, 'Task train (t-7) failed: RangeError: bad rate');
    assert.equal(err.functionName, 'train');
    assert.equal(err.taskId, 't-7');
    assert.equal(err.logs, 'log group g');
    assert.equal(err.fault, 'user');
    assert.equal(err.retryable, false);
    assert.equal(err.stack, 'TaskError: Task train (t-7) failed: RangeError: bad rate\n    --- remote stack (train, task t-7) ---\nRangeError: bad rate\n    at train (tasks.js:3:9)');
    // Without a remote stack, the local one stays.
    const local = TaskError.fromRemote('f', 't', { name: 'E', message: 'm' });
    assert.match(local.stack ?? '', /^TaskError: Task f \(t\) failed: E: m\n\s+at /);
    assert.equal(TaskError.fromRemote('f', 't', { name: 'E', message: 'm', retryable: true }, 'infrastructure').retryable, true);
    assert.equal(TaskError.fromRemote('f', 't', { name: 'E', message: 'm' }, 'infrastructure').retryable, false);
  });

  it('a DependencyError names the task that failed at the root of the chain', () => {
    const root = TaskError.fromRemote('load', 't-1', { name: 'Error', message: 'no such file' });
    const first = new DependencyError('parse', 't-2', root);
    const second = new DependencyError('train', 't-3', first);
    assert.equal(second.message, 'Task train (t-3) did not run: its argument from parse (t-2) was not computed, because load (t-1) failed: Error: no such file');
    assert.equal(second.cause, first);
    assert.equal(second.fault, 'user');
    assert.equal(second.remote, root.remote);
    assert.equal(rootTaskError(second), root);
    // An upstream failure that is not a task's: named as such, an infrastructure fault.
    const other = new DependencyError('train', 't-4', new UsageError('the runtime was shut down'));
    assert.equal(other.message, 'Task train (t-4) did not run: its argument from an upstream ref failed: the runtime was shut down');
    assert.equal(other.fault, 'infrastructure');
    assert.equal(rootTaskError(new Error('x')), undefined);
    // A cyclic cause chain ends.
    const a = new Error('a') as Error & { cause?: unknown };
    a.cause = a;
    assert.equal(rootTaskError(a), undefined);
  });

  it('timeouts, crashes, get timeouts and throttling say what happened and what to change', () => {
    const t = new TaskTimeoutError('fit', 't-1', 2500, 'logs here');
    assert.equal(t.message, 'Task fit (t-1) timed out after 2500 ms and was stopped; raise its timeout with fit.options({ timeoutMs }) if it needs longer');
    assert.equal(t.timeoutMs, 2500);
    assert.equal(t.logs, 'logs here');
    assert.equal(t.fault, 'infrastructure');
    const c = new WorkerCrashedError('fit', 't-1', 'exit code 3', { logs: 'group g' });
    assert.equal(c.message, 'Task fit (t-1) failed: its worker crashed (exit code 3); logs: group g');
    assert.equal(new WorkerCrashedError('fit', 't-1', 'oom').message, 'Task fit (t-1) failed: its worker crashed (oom)');
    const cause = new Error('exit');
    assert.equal(new WorkerCrashedError('fit', 't-1', 'x', { cause }).cause, cause);
    const g = new GetTimeoutError(50, ['a', 'b', 'c', 'd', 'e', 'f']);
    assert.equal(g.message, 'get timed out after 50 ms with 6 value(s) not ready (a, b, c, d, e, ...); the tasks keep running: call get again, raise timeoutMs, or use wait() to poll');
    assert.deepEqual(g.pending, ['a', 'b', 'c', 'd', 'e', 'f']);
    assert.match(new GetTimeoutError(5, ['a']).message, /with 1 value\(s\) not ready \(a\); the tasks/);
    const th = new ThrottledError(4, 1234.6, { cause });
    assert.equal(th.message, 'still throttled after 4 attempts over 1235 ms');
    assert.equal(th.attempts, 4);
    assert.equal(th.cause, cause);
    const s = new ObjectStoreError('gone', 'k/1', { cause });
    assert.equal(s.key, 'k/1');
    assert.equal(s.cause, cause);
    assert.equal('cause' in new UsageError('u'), false, 'no cause unless given');
  });

  it('a thrown non-Error becomes a NonErrorThrown with what was thrown', () => {
    assert.deepEqual(toRemoteErrorInfo('boom'), { name: 'NonErrorThrown', message: 'a non-Error value was thrown: boom' });
    assert.deepEqual(toRemoteErrorInfo({ code: 7 }), { name: 'NonErrorThrown', message: 'a non-Error value was thrown: {"code":7}' });
    assert.equal(toRemoteErrorInfo(undefined).message, 'a non-Error value was thrown: undefined');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(toRemoteErrorInfo(cyclic).message, 'a non-Error value was thrown: [object Object]');
    assert.equal(toRemoteErrorInfo(10n).message, 'a non-Error value was thrown: 10');
    const e = Object.assign(new TypeError('t'), { code: 'ERR_X' });
    const info = toRemoteErrorInfo(e);
    assert.equal(info.name, 'TypeError');
    assert.equal(info.code, 'ERR_X');
    assert.equal(info.stack, e.stack);
    assert.equal('retryable' in info, false);
    assert.equal('code' in toRemoteErrorInfo(Object.assign(new Error('n'), { code: 5 })), false, 'only string codes');
    assert.equal(toRemoteErrorInfo(new WorkerCrashedError('f', 't', 'x')).retryable, true);
  });
});

describe('error names', () => {
  it('each error says its class in name and in String(err)', () => {
    const cases: Array<[Error, string]> = [
      [new VolleyError('m'), 'VolleyError'],
      [new UsageError('m'), 'UsageError'],
      [new ConfigError('m'), 'ConfigError'],
      [new esm.SerializationError('m', 'p'), 'SerializationError'],
      [new esm.DuplicateTaskError('m'), 'DuplicateTaskError'],
      [new esm.TaskNotFoundError('m'), 'TaskNotFoundError'],
      [new esm.ProtocolError('m'), 'ProtocolError'],
      [new TaskError('m', { functionName: 'f', taskId: 't', fault: 'user' }), 'TaskError'],
      [new DependencyError('f', 't', new Error('u')), 'DependencyError'],
      [new TaskTimeoutError('f', 't', 1), 'TaskTimeoutError'],
      [new WorkerCrashedError('f', 't', 'x'), 'WorkerCrashedError'],
      [new GetTimeoutError(1, []), 'GetTimeoutError'],
      [new ObjectStoreError('m', 'k'), 'ObjectStoreError'],
      [new ThrottledError(1, 1, { cause: undefined }), 'ThrottledError'],
    ];
    for (const [err, name] of cases) {
      assert.equal(err.name, name);
      assert.ok(String(err).startsWith(`${name}: `), String(err));
    }
    assert.match(new GetTimeoutError(5, ['a', 'b', 'c', 'd', 'e']).message, /\(a, b, c, d, e\); the tasks/, 'five pending: no ellipsis');
  });
});

describe('instanceof across the ESM and CommonJS copies of the library', () => {
  it('matches by class within the hierarchy, not by name alone', () => {
    assert.notEqual(cjs.UsageError, UsageError, 'two copies are loaded');
    const fromCjs = new cjs.TaskTimeoutError('f', 't', 1);
    assert.ok(fromCjs instanceof TaskTimeoutError);
    assert.ok(fromCjs instanceof TaskError);
    assert.ok(fromCjs instanceof VolleyError);
    assert.ok(!(fromCjs instanceof WorkerCrashedError));
    assert.ok(!(fromCjs instanceof UsageError));
    assert.ok(new UsageError('u') instanceof cjs.UsageError);
    assert.ok(new esm.DuplicateTaskError('d') instanceof cjs.UsageError);
    assert.ok(!(new UsageError('u') instanceof cjs.ConfigError));
    // An unrelated error class that happens to share a name is not volley's.
    class UsageErrorLookalike extends Error {}
    Object.defineProperty(UsageErrorLookalike, 'name', { value: 'UsageError' });
    assert.ok(!(new UsageErrorLookalike('x') instanceof UsageError));
    assert.ok(!(Object.assign(new Error('x'), { name: 'UsageError' }) instanceof UsageError));
    for (const v of [null, undefined, 'UsageError', 3] as unknown[]) assert.ok(!((v as object) instanceof VolleyError));
    assert.ok(new ConfigError('c') instanceof Error);
  });
});
