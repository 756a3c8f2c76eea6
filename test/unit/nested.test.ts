/**
 * The pure parts of nested tasks: envelopes that carry a depth and a result's refs, the Lambda
 * request's job limits, errors that travel with their task and cause, and values that hold refs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError, TaskDepthError, TaskError, TaskTimeoutError, UsageError } from 'volley';
import { validateLambdaRequest } from '../../sdk/aws/wire.js';
import { reviveError, toRemoteErrorInfo } from '../../sdk/errors.js';
import { PROTOCOL_VERSION, validateResultEnvelope, validateTaskEnvelope } from '../../sdk/protocol.js';
import { encode } from '../../sdk/serialize.js';
import { ObjectRef } from '../../sdk/ref.js';
import { decodeResolved } from '../../sdk/worker/nested.js';

const env = {
  v: PROTOCOL_VERSION,
  kind: 'task',
  job: 'j/run0123456789abcdef',
  taskId: 't-1',
  fn: 'f',
  args: { kind: 'inline', bytes: new Uint8Array([1]) },
  deps: {},
  resultKey: 'jobs/j/run0123456789abcdef/t-1',
  inlineLimit: 10,
};
const timing = { fetchMs: 0, runMs: 0, storeMs: 0 };

describe('nested-task envelopes', () => {
  it('a task envelope may carry a depth of 1 or more, nothing else', () => {
    assert.equal(validateTaskEnvelope({ ...env, depth: 3 }).depth, 3);
    for (const depth of [0, -1, 1.5, '2']) assert.throws(() => validateTaskEnvelope({ ...env, depth }), ProtocolError, String(depth));
  });

  it("a value or stored result may carry its refs' payloads; an error result may not, nor a malformed payload", () => {
    const ok = { v: PROTOCOL_VERSION, kind: 'value', taskId: 't-1', bytes: new Uint8Array([1]), timing, refs: { 't-1.1': { kind: 'stored', key: 'k', size: 3 } } };
    assert.deepEqual(validateResultEnvelope(ok).kind, 'value');
    assert.throws(() => validateResultEnvelope({ ...ok, refs: { x: { kind: 'stored', key: '' } } }), /refs\.x/);
    assert.throws(() => validateResultEnvelope({ v: PROTOCOL_VERSION, kind: 'error', taskId: 't', timing, error: { name: 'E', message: 'm' }, refs: {} }), /refs/);
  });

  it("the Lambda request's job limits are checked at the worker's boundary", () => {
    const req = { v: PROTOCOL_VERSION, kind: 'invoke', task: env, timeoutMs: 1000, memoryMB: 1024 };
    const nest = { maxTaskDepth: 4, taskTimeoutMs: 1000, taskMemoryMB: 1024, maxConcurrency: 8 };
    assert.deepEqual(validateLambdaRequest({ ...req, nest }).nest, nest);
    assert.throws(() => validateLambdaRequest({ ...req, nest: { ...nest, maxTaskDepth: 'x' } }), /nest\.maxTaskDepth/);
    assert.throws(() => validateLambdaRequest({ ...req, nest: { ...nest, keyPrefix: 'x/' } }), /outside the protocol/);
  });
});

describe('errors of nested tasks', () => {
  it("a parent that re-threw its child's TaskError fails with that error as cause, named once in the message", () => {
    const child = TaskError.fromRemote('leaf', 'p-1.1', toRemoteErrorInfo(new RangeError('bad input')));
    const parent = TaskError.fromRemote('mid', 'p-1', toRemoteErrorInfo(child));
    const top = TaskError.fromRemote('root', 'p', toRemoteErrorInfo(parent));
    const chain: TaskError[] = [];
    for (let e: unknown = top; e instanceof TaskError; e = e.cause) chain.push(e);
    assert.deepEqual(
      chain.map((e) => [e.functionName, e.taskId]),
      [
        ['root', 'p'],
        ['mid', 'p-1'],
        ['leaf', 'p-1.1'],
      ],
    );
    assert.equal(chain[2]!.remote?.name, 'RangeError');
    assert.equal(top.message, 'Task root (p) failed: its nested task leaf (p-1.1) failed: RangeError: bad input');
  });

  it('revives the class, code and retryable of a volley error, and keeps the cause of a plain one', () => {
    const t = reviveError(toRemoteErrorInfo(new TaskTimeoutError('f', 't-2', 50)));
    assert.ok(t instanceof TaskTimeoutError);
    assert.equal((t as TaskError).code, 'TASK_TIMEOUT');
    assert.equal((t as TaskError).retryable, true);
    assert.equal((t as TaskError).taskId, 't-2');
    const d = reviveError(toRemoteErrorInfo(new TaskDepthError('f', 4)));
    assert.ok(d instanceof TaskDepthError && d instanceof UsageError);
    assert.equal((d as TaskDepthError).code, 'TASK_DEPTH');
    const plain = reviveError(toRemoteErrorInfo(new Error('outer', { cause: new TypeError('inner') })));
    assert.equal(plain.message, 'outer');
    assert.equal((plain.cause as Error).name, 'TypeError');
  });
});

describe('values that hold refs', () => {
  it('replaces each ref by its value, decoding an object once where it appears twice', async () => {
    const owner = { jobId: 'j' };
    const a = new ObjectRef('a', owner);
    const root = encode({ x: [a, a], y: new ObjectRef('b', owner) }, 'result', undefined, () => undefined);
    const refs = { a: { kind: 'inline' as const, bytes: encode({ n: 1 }) }, b: { kind: 'stored' as const, key: 'kb', size: 0 } };
    const v = (await decodeResolved({ kind: 'inline', bytes: root }, refs, async (key) => (key === 'kb' ? encode('from the store') : assert.fail(key)))) as {
      x: Array<{ n: number }>;
      y: string;
    };
    assert.deepEqual(v, { x: [{ n: 1 }, { n: 1 }], y: 'from the store' });
    assert.equal(v.x[0], v.x[1]);
    await assert.rejects(
      decodeResolved({ kind: 'inline', bytes: root }, { a: refs.a }, async () => encode(0)),
      /ref b is inside a value/,
    );
  });

  it('without a collector, a ref in a result is still a SerializationError at the encoder', () => {
    assert.throws(() => encode({ r: new ObjectRef('a', { jobId: 'j' }) }, 'result of f'), /result of f\.r is an ObjectRef/);
  });
});
