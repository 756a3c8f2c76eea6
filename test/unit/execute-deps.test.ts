/**
 * A task's arguments whose refs resolve from inline dependencies (sdk/worker/execute.ts, the
 * synchronous path every worker runs for most tasks): each object is decoded once, refs inside
 * a dependency's value resolve through the same deps, and a ref whose object was not sent is a
 * ProtocolError of the infrastructure, for any id, on one task after another.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { remote } from 'volley';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { NO_DEPS, PROTOCOL_VERSION, type Payload, type ResultEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';
import { ObjectRef } from '../../sdk/ref.js';
import { decode, encode, encodeArgs } from '../../sdk/serialize.js';
import { executeTask } from '../../sdk/worker/execute.js';

const shape = remote(function execDepsShape(a: { n: number; inner: { m: number } }, b: unknown, c: unknown): unknown[] {
  return [a === b, a.n, a.inner.m, c];
});

const JOB = 'job1/AAAAAAAAAAAAAAAAAAAAAA';
const owner = { jobId: JOB };
const ref = (id: string) => new ObjectRef(id, owner);
const inline = (v: unknown, refs = false): Payload => ({ kind: 'inline', bytes: encode(v, 'value', undefined, refs ? () => undefined : undefined) });

let n = 0;
function task(args: unknown[], deps: TaskEnvelope['deps']): TaskEnvelope {
  const taskId = `execDepsShape-${++n}`;
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: JOB,
    taskId,
    fn: 'execDepsShape',
    args: { kind: 'inline', bytes: encodeArgs(args, () => undefined) },
    deps,
    resultKey: `jobs/${JOB}/${taskId}`,
    inlineLimit: 1024,
  };
}

const run = (env: TaskEnvelope) => executeTask(env, { store: new MemoryStore(), keyPrefix: '' });

function value(res: ResultEnvelope): unknown {
  assert.equal(res.kind, 'value', res.kind === 'error' ? res.error.message : res.kind);
  return decode((res as { bytes: Uint8Array }).bytes);
}

function protocolError(res: ResultEnvelope, message: RegExp): void {
  assert.equal(res.kind, 'error');
  if (res.kind !== 'error') return;
  assert.equal(res.error.name, 'ProtocolError');
  assert.equal(res.fault, 'infrastructure');
  assert.match(res.error.message, message);
}

function nullDeps(deps: Record<string, Payload>): TaskEnvelope['deps'] {
  return Object.assign(Object.create(null) as Record<string, Payload>, deps);
}

describe('arguments resolved from inline deps', () => {
  it('decodes each object once, and the refs inside a dependency from the same deps', async () => {
    void shape;
    const deps = nullDeps({ a: inline({ n: 1, inner: ref('c') }, true), b: inline('b'), c: inline({ m: 5 }) });
    assert.deepEqual(value(await run(task([ref('a'), ref('a'), ref('b')], deps))), [true, 1, 5, 'b']);
    // As a Lambda envelope decoded from JSON has them: deps with a prototype.
    const plain = { a: inline({ n: 2, inner: ref('c') }, true), b: inline(null), c: inline({ m: 6 }) };
    assert.deepEqual(value(await run(task([ref('a'), ref('a'), ref('b')], plain))), [true, 2, 6, null]);
  });

  it('a ref whose object was not sent is a ProtocolError, whatever its id, and the next task is not affected', async () => {
    const some = { a: inline({ n: 1, inner: { m: 1 } }) };
    protocolError(await run(task([ref('a'), ref('a'), ref('x')], nullDeps(some))), /ref x is used by the arguments but missing from the envelope's deps/);
    // An id that an object with a prototype answers for is not a dependency.
    protocolError(await run(task([ref('a'), ref('a'), ref('toString')], { ...some })), /ref toString is used by the arguments but missing/);
    const holds = nullDeps({ a: inline({ n: 1, inner: ref('gone') }, true), b: inline(0) });
    protocolError(await run(task([ref('a'), ref('a'), ref('b')], holds)), /ref gone is inside a value but its object was not sent with it/);
    // The deps of a failed task are not those of the next one.
    protocolError(await run(task([ref('a'), ref('a'), ref('b')], nullDeps({ b: inline(0) }))), /ref a is used by the arguments but missing/);
    assert.deepEqual(value(await run(task([{ n: 3, inner: { m: 4 } }, 0, 'c'], NO_DEPS as TaskEnvelope['deps']))), [false, 3, 4, 'c']);
    assert.deepEqual(value(await run(task([ref('a'), ref('a'), ref('b')], nullDeps({ a: inline({ n: 7, inner: { m: 8 } }), b: inline(9) })))), [true, 7, 8, 9]);
  });
});
