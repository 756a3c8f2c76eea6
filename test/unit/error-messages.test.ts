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
import { reviveError, rootTaskError, shutDownBeforeRun, toRemoteErrorInfo } from '../../sdk/errors.js';

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

describe('errors of every class', () => {
  it('a cancelled task, a dependency failure: messages, codes, and a stack that is the message alone', () => {
    const c = new esm.TaskCancelledError('fit', 't-1', 'while it ran');
    assert.equal(c.message, 'Task fit (t-1) was cancelled while it ran');
    assert.equal(c.stack, `TaskCancelledError: ${c.message}`);
    assert.equal(c.code, 'TASK_CANCELLED');
    assert.equal(c.fault, 'user');
    assert.equal(c.retryable, false);
    const d = new DependencyError('g', 't-2', c);
    assert.equal(d.message, 'Task g (t-2) did not run: its argument from fit (t-1) failed: was cancelled while it ran');
    assert.equal(d.stack, `DependencyError: ${d.message}`);
  });

  it("a dependency failure names the upstream's own reason: a task error without a remote error, or with a message of its own", () => {
    const t = new TaskTimeoutError('f', 't-1', 10);
    assert.equal(
      new DependencyError('g', 't-2', t).message,
      `Task g (t-2) did not run: its argument from f (t-1) failed: timed out after 10 ms and was stopped; raise its timeout with f.options({ timeoutMs }) if it needs longer`,
    );
    const own = new TaskError('the store said no', { functionName: 'f', taskId: 't-1', fault: 'infrastructure' });
    assert.equal(new DependencyError('g', 't-2', own).message, 'Task g (t-2) did not run: its argument from f (t-1) failed: the store said no');
    // Two levels above a failure that is not a task's: no root task to name.
    const first = new DependencyError('g', 't-2', new UsageError('the runtime was shut down'));
    const second = new DependencyError('h', 't-3', first);
    assert.equal(second.message, 'Task h (t-3) did not run: its argument from g (t-2) failed: did not run: its argument from an upstream ref failed: the runtime was shut down');
    assert.equal(second.fault, 'infrastructure');
    assert.equal(second.remote, undefined);
  });

  it('a timeout whose outcome is unknown says so', () => {
    const t = new TaskTimeoutError('fit', 't-1', 900, undefined, true);
    assert.equal(
      t.message,
      'Task fit (t-1) gave no answer in time (its timeout is 900 ms): the outcome is unknown, the task may have run to completion or still be running, and its result is lost; raise its timeout with fit.options({ timeoutMs }) if it needs longer',
    );
    assert.equal(t.outcomeUnknown, true);
    assert.equal(new TaskTimeoutError('fit', 't-1', 900).outcomeUnknown, false);
  });

  it('actors, lost objects and nesting depth: names, codes, fields and messages', () => {
    const cause = new Error('killed');
    const a = new esm.ActorDiedError('the actor is gone', { functionName: 'Counter.add', taskId: 't-1', actorId: 'actor-1', cause });
    assert.deepEqual([a.name, a.code, a.fault, a.retryable, a.actorId, a.cause, a.functionName], ['ActorDiedError', 'ACTOR_DIED', 'infrastructure', false, 'actor-1', cause, 'Counter.add']);
    assert.ok(a instanceof TaskError);
    const s = new esm.ActorStateError('state cannot travel', 'this.f');
    assert.deepEqual([s.name, s.code, s.path, String(s)], ['ActorStateError', 'ACTOR_STATE', 'this.f', 'ActorStateError: state cannot travel']);
    assert.ok(s instanceof esm.SerializationError);
    const l = new esm.ObjectLostError('o-1', 'jobs/j/o-1', 'it was stored by put()');
    assert.equal(l.message, 'object o-1 is lost: it is no longer in the store (key jobs/j/o-1) and it was stored by put()');
    assert.deepEqual([l.name, l.code, l.objectId, l.key, l.retryable], ['ObjectLostError', 'OBJECT_LOST', 'o-1', 'jobs/j/o-1', false]);
    assert.ok(l instanceof ObjectStoreError);
    const n = new esm.TaskDepthError('walk', 4);
    assert.equal(
      n.message,
      'walk.remote() would start a task at nesting depth 5, deeper than maxTaskDepth (4): a task that starts tasks needs a base case that stops the recursion; if the depth is meant, raise it with init({ maxTaskDepth })',
    );
    assert.deepEqual([n.name, n.code, n.maxTaskDepth], ['TaskDepthError', 'TASK_DEPTH', 4]);
  });

  it('a task its invoker was closed before running: message, code, fault and fields', () => {
    const e = shutDownBeforeRun({ fn: 'fit', taskId: 't-9' });
    assert.ok(e instanceof TaskError);
    assert.equal(e.message, 'Task fit (t-9) was not run: the runtime was shut down before this task ran');
    assert.deepEqual([e.name, e.code, e.fault, e.retryable, e.functionName, e.taskId], ['TaskError', 'SHUT_DOWN', 'infrastructure', false, 'fit', 't-9']);
  });

  it('a task error prints its remote error once: `remote` and an absent `logs` are not own enumerable fields', () => {
    const err = TaskError.fromRemote('f', 't', { name: 'E', message: 'm', stack: 'E: m\n    at f' });
    assert.equal(err.remote?.name, 'E');
    assert.ok(!Object.keys(err).includes('remote'), Object.keys(err).join());
    assert.ok(!('logs' in err));
    assert.equal(TaskError.fromRemote('f', 't', { name: 'E', message: 'm' }, 'user', 'g').logs, 'g');
  });
});

describe('an error on its way back from a worker', () => {
  it('a nested task failure re-thrown by its parent: the message names the deepest task once, the cause is a TaskError of it', () => {
    const leaf = { name: 'RangeError', message: 'bad', stack: 'RangeError: bad' };
    const mid = { name: 'TaskError', message: 'Task leaf (p-1.1) failed: RangeError: bad', task: { functionName: 'leaf', taskId: 'p-1.1', fault: 'user' as const, remote: leaf } };
    const top = TaskError.fromRemote('root', 'p', { name: 'TaskError', message: 'Task mid (p-1) failed: ...', task: { functionName: 'mid', taskId: 'p-1', fault: 'user', remote: mid } });
    assert.equal(top.message, 'Task root (p) failed: its nested task leaf (p-1.1) failed: RangeError: bad');
    assert.ok(top.cause instanceof TaskError);
    assert.equal((top.cause as TaskError).functionName, 'mid');
    // A plain error with a cause: the cause travels, revived.
    const plain = TaskError.fromRemote('f', 't', { name: 'Error', message: 'outer', cause: { name: 'TypeError', message: 'inner' } });
    assert.equal(plain.message, 'Task f (t) failed: Error: outer');
    assert.equal((plain.cause as Error).message, 'inner');
    assert.equal((plain.cause as Error).name, 'TypeError');
    assert.equal(TaskError.fromRemote('f', 't', { name: 'E', message: 'm' }).cause, undefined);
  });

  it('a remote error whose chain of nested tasks loops (a malformed info) still gives a TaskError', () => {
    const info: esm.RemoteErrorInfo = { name: 'TaskError', message: 'm' };
    info.task = { functionName: 'loop', taskId: 'p-1', fault: 'user', remote: info };
    const err = TaskError.fromRemote('root', 'p', info);
    assert.equal(err.message, 'Task root (p) failed: its nested task loop (p-1) failed: TaskError: m');
  });

  it('causes travel eight levels deep, and no deeper', () => {
    let e: Error = new Error('e0');
    for (let i = 1; i <= 12; i++) e = new Error(`e${i}`, { cause: e });
    const info = toRemoteErrorInfo(e);
    const levels = (x: { cause?: unknown } | undefined) => {
      let n = 0;
      for (; x; x = x.cause as { cause?: unknown } | undefined) n++;
      return n;
    };
    assert.equal(levels(info), 9, 'the error and eight causes');
    const deep = { name: 'Error', message: 'x' } as esm.RemoteErrorInfo;
    let chain = deep;
    for (let i = 0; i < 12; i++) chain = { name: 'Error', message: `c${i}`, cause: chain };
    assert.equal(levels(reviveError(chain)), 9);
  });

  it('what an error info carries: string codes, retryable of volley errors, the task of a task error, the key of a store error', () => {
    const s = toRemoteErrorInfo(new ObjectStoreError('gone', 'k/1', { retryable: true }));
    assert.deepEqual([s.name, s.code, s.retryable, s.key], ['ObjectStoreError', 'OBJECT_STORE', true, 'k/1']);
    assert.equal('key' in toRemoteErrorInfo(new UsageError('u')), false);
    const t = toRemoteErrorInfo(new WorkerCrashedError('f', 't-1', 'oom'));
    assert.deepEqual(t.task, { functionName: 'f', taskId: 't-1', fault: 'infrastructure', remote: undefined });
    assert.equal('task' in toRemoteErrorInfo(new UsageError('u')), false);
  });

  it('every volley error class comes back as itself, with its code, name, message and stack', () => {
    const errors: Error[] = [
      new VolleyError('v'),
      new UsageError('u'),
      new ConfigError('c'),
      new esm.SerializationError('s', 'p'),
      new esm.DuplicateTaskError('d'),
      new esm.TaskNotFoundError('n'),
      new esm.ProtocolError('p'),
      new TaskError('t', { functionName: 'f', taskId: 't', fault: 'user' }),
      new DependencyError('f', 't', new Error('u')),
      new esm.TaskCancelledError('f', 't', 'before it started'),
      new TaskTimeoutError('f', 't', 1),
      new WorkerCrashedError('f', 't', 'x'),
      new esm.ActorDiedError('gone', { functionName: 'f', taskId: 't', actorId: 'a' }),
      new esm.ActorStateError('bad state', 'this.x'),
      new GetTimeoutError(1, ['a']),
      new ObjectStoreError('m', 'k'),
      new esm.ObjectLostError('o', 'k', 'why'),
      new ThrottledError(1, 1, { cause: undefined }),
      new esm.TaskDepthError('f', 1),
    ];
    for (const err of errors) {
      const back = reviveError(toRemoteErrorInfo(err));
      const cls = (esm as unknown as Record<string, new (...a: never[]) => Error>)[err.name]!;
      assert.ok(back instanceof cls, `${err.name} comes back as ${err.name}`);
      assert.equal(back.name, err.name);
      assert.equal(back.message, err.message);
      assert.equal(back.stack, err.stack);
      assert.equal((back as VolleyError).code, (err as VolleyError).code, err.name);
      assert.equal((back as VolleyError).retryable, (err as VolleyError).retryable, err.name);
      assert.ok(!Object.keys(back).includes('name'), 'name is not an own enumerable field');
    }
  });

  it('the cause of a volley error comes back with it', () => {
    const back = reviveError(toRemoteErrorInfo(new ObjectStoreError('read failed', 'k', { cause: new TypeError('socket hang up'), retryable: true })));
    assert.ok(back instanceof ObjectStoreError);
    assert.equal((back.cause as Error).name, 'TypeError');
    assert.equal((back.cause as Error).message, 'socket hang up');
    assert.equal((back as ObjectStoreError).retryable, true);
  });

  it("a remote error that is not volley's stays a plain Error with the remote name, even when it shares a volley class's name", () => {
    const lookalike = reviveError({ name: 'UsageError', message: 'not ours' });
    assert.ok(!(lookalike instanceof VolleyError));
    assert.equal(lookalike.name, 'UsageError');
    assert.equal(String(lookalike), 'UsageError: not ours');
    const coded = reviveError({ name: 'SystemError', message: 'x', code: 'ERR_X' });
    assert.ok(!(coded instanceof VolleyError));
    assert.equal((coded as { code?: string }).code, undefined);
    // Without a remote stack, the local one (of the revived error) stays.
    assert.match(reviveError({ name: 'E', message: 'm' }).stack ?? '', /^E: m\n\s+at /);
  });
});
