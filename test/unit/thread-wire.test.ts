/**
 * The embedded pool's packed thread messages (sdk/local/wire.ts): what goes in comes out, for
 * every shape of payload and result, and a batch that does not fit its layout is a ProtocolError.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from 'volley';
import { PACK_MAX_BYTES, packResults, packTasks, unpackResults, unpackTasks, type ThreadTask } from '../../sdk/local/wire.js';
import { PROTOCOL_VERSION, type ResultEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';

const JOB = 'job1/AAAAAAAAAAAAAAAAAAAAAA';

function env(id: string, extra: Partial<TaskEnvelope> = {}): TaskEnvelope {
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: JOB,
    taskId: id,
    fn: 'f',
    args: { kind: 'inline', bytes: new Uint8Array([1, 2, 3]) },
    deps: {},
    resultKey: `jobs/${JOB}/${id}`,
    inlineLimit: 1024,
    ...extra,
  };
}

/** Structured clone, as postMessage does (the buffer travels with the message). */
const cross = <T>(x: T): T => structuredClone(x);

describe('packed thread messages', () => {
  it('tasks come out as they went in: inline (small and large), stored, module, depth, attempt, after', () => {
    const big = new Uint8Array(PACK_MAX_BYTES + 1).fill(7);
    const tasks: ThreadTask[] = [
      { env: env('a') },
      {
        env: env('b', {
          module: 'file:///m.js',
          depth: 2,
          attempt: 3,
          args: { kind: 'stored', key: `jobs/${JOB}/b.args`, size: 9 },
          deps: { a: { kind: 'inline', bytes: new Uint8Array([9]) }, x: { kind: 'inline', bytes: big }, y: { kind: 'stored', key: `jobs/${JOB}/y`, size: 5 } },
        }),
        after: ['a'],
      },
      { env: env('c', { args: { kind: 'inline', bytes: new Uint8Array(0) } }), after: ['a', 'b'] },
    ];
    const out = unpackTasks(cross(packTasks(tasks)));
    assert.deepEqual(
      out.map((t) => ({ ...t, env: { ...t.env, deps: { ...t.env.deps } } })),
      tasks.map((t) => ({ ...t, env: { ...t.env } })),
    );
    assert.equal(Object.getPrototypeOf(out[1]!.env.deps), null, 'deps keyed by ids from the wire have no prototype');
  });

  it('results come out as they went in: packed values, stored, errors, values with refs, and followers not started', () => {
    const timing = { fetchMs: 1, runMs: 2, storeMs: 3, startedAt: 4 };
    const results: Array<ResultEnvelope | { kind: 'notStarted'; taskId: string }> = [
      { v: PROTOCOL_VERSION, kind: 'value', taskId: 'a', bytes: new Uint8Array([5, 6]), timing },
      { v: PROTOCOL_VERSION, kind: 'value', taskId: 'b', bytes: new Uint8Array(PACK_MAX_BYTES + 10).fill(1), timing: { fetchMs: 0, runMs: 0, storeMs: 0 } },
      { v: PROTOCOL_VERSION, kind: 'stored', taskId: 'c', key: `jobs/${JOB}/c`, size: 7, timing },
      { v: PROTOCOL_VERSION, kind: 'error', taskId: 'd', error: { name: 'RangeError', message: 'no' }, fault: 'user', timing },
      { v: PROTOCOL_VERSION, kind: 'value', taskId: 'e', bytes: new Uint8Array([1]), refs: { r: { kind: 'inline', bytes: new Uint8Array([2]) } }, timing },
      { kind: 'notStarted', taskId: 'f' },
    ];
    assert.deepEqual(unpackResults(cross(packResults(results))), results);
    // The pool names the thread in the value results it unpacks; the others travel as they are.
    const worker = { id: 'thread-1' };
    const named = unpackResults(cross(packResults(results)), worker);
    assert.deepEqual(named.slice(0, 2), [
      { ...results[0]!, worker },
      { ...results[1]!, worker },
    ]);
    assert.deepEqual(named.slice(2), results.slice(2));
  });

  it('refuses a batch that does not fit its layout', () => {
    const good = packTasks([{ env: env('a') }]);
    const bad = [
      { f: good.f.slice(0, 5), bytes: good.bytes },
      { f: good.f, bytes: new ArrayBuffer(1) },
      { f: good.f, bytes: new ArrayBuffer(10) },
      { f: [...good.f.slice(0, 8), 1e9, 0, 0], bytes: good.bytes },
      { f: 'x' },
    ];
    for (const p of bad) assert.throws(() => unpackTasks(p as never), ProtocolError);
    assert.throws(() => unpackResults({ f: [null] } as never), ProtocolError);
    assert.throws(() => unpackResults({ f: ['a', 0, 0, 0, -1, 3] }), ProtocolError, 'a payload past the end of its buffer');
    // A field of the wrong type, or missing, in a task's fixed fields or a result's timing: the first such field is named.
    assert.throws(() => unpackTasks({ f: [good.f[0]!, 7, ...good.f.slice(2)], bytes: good.bytes }), /expected a string, got number/);
    assert.throws(() => unpackTasks({ f: [...good.f.slice(0, 6), 'x', ...good.f.slice(7)], bytes: good.bytes }), /expected a number, got string/);
    assert.throws(() => unpackResults({ f: ['a', 0, 'x', 0, -1, 0] }), /expected a number, got string/);
    assert.throws(() => unpackResults({ f: ['a', 0, 0, 0] }), /fields end early/);
    assert.throws(() => unpackResults({ f: ['a', 0, 0, 0, -1] }), /fields end early/);
  });
});
