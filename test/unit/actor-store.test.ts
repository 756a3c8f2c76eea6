/**
 * The store-backed actor path (Lambda, the emulator, LocalStack) against a store that honours
 * conditional writes, which s3rver does not: duplicated and retried invocations of one call,
 * warm sandboxes, calls that did not run. The worker side runs for real (executeTask); only
 * the store is a fake.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ObjectStore } from '../../sdk/backend.js';
import { PROTOCOL_VERSION, type ResultEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';
import { decode, encodeArgs } from '../../sdk/serialize.js';
import { executeTask } from '../../sdk/worker/execute.js';
import { actorStateKey, linkRecord, type ActorCallSpec } from '../../sdk/worker/actor.js';
import '../fixtures/actors.js';

/**
 * An in-memory stand-in for S3 with the documented semantics of `PutObject` with
 * `If-None-Match: *`: the write succeeds only if no object has the key, otherwise S3 answers
 * 412 Precondition Failed and the existing object is unchanged (ObjectStore.create resolves
 * false, as S3Store.create does on a 412). It counts requests and bytes, as S3 would bill them.
 */
class ConditionalStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>();
  gets = 0;
  creates = 0;
  bytesRead = 0;
  bytesWritten = 0;
  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.create(key, bytes);
  }
  async create(key: string, bytes: Uint8Array): Promise<boolean> {
    this.creates++;
    if (this.objects.has(key)) return false;
    this.bytesWritten += bytes.byteLength;
    this.objects.set(key, bytes.slice());
    return true;
  }
  async get(key: string): Promise<Uint8Array> {
    this.gets++;
    const b = this.objects.get(key);
    if (!b) throw new Error(`NoSuchKey: ${key}`);
    this.bytesRead += b.byteLength;
    return b;
  }
  async deletePrefix(prefix: string): Promise<number> {
    let n = 0;
    for (const k of [...this.objects.keys()]) if (k.startsWith(prefix) && this.objects.delete(k)) n++;
    return n;
  }
}

const RUN = 'j1/run0123456789abcdef';
const JOB = `jobs/${RUN}/`;
let tasks = 0;
function call(spec: Omit<ActorCallSpec, 'id' | 'mode'>, args: unknown[], id = 'Counter-x'): TaskEnvelope {
  const taskId = `actor:Counter-${++tasks}`;
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: RUN,
    taskId,
    fn: 'actor:Counter',
    args: { kind: 'inline', bytes: encodeArgs([{ ...spec, id, mode: 'store' }, args], () => undefined) },
    deps: {},
    resultKey: `${JOB}${taskId}`,
    inlineLimit: 100_000,
  };
}

function answerOf(res: ResultEnvelope): unknown {
  if (res.kind === 'error') throw new Error(`${res.error.name}: ${res.error.message}`);
  assert.equal(res.kind, 'value');
  return decode((res as { bytes: Uint8Array }).bytes);
}

/** Forgets the instances this process holds, as a cold sandbox would. */
function coldSandbox(): void {
  (globalThis as unknown as Record<symbol, Map<string, unknown>>)[Symbol.for('volley.actors')]?.clear();
}

describe('actor state in a store with conditional writes', () => {
  it('a duplicated invocation of a call answers the committed result and never commits twice', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    answerOf(await executeTask(call({ seq: 0, from: -1 }, [0]), { store, keyPrefix: '' }));
    const env = call({ seq: 1, from: 0, method: 'addRandom' }, []);
    const first = answerOf(await executeTask(env, { store, keyPrefix: '' })) as number;
    coldSandbox();
    // The same event again (a retry after a lost response, or a duplicate delivery).
    const second = answerOf(await executeTask(env, { store, keyPrefix: '' })) as number;
    assert.equal(second, first, 'the duplicate answers what the first committed');
    const next = answerOf(await executeTask(call({ seq: 2, from: 1, method: 'read' }, []), { store, keyPrefix: '' }));
    assert.equal(next, first, "the state is the first run's, applied once");
    assert.equal([...store.objects.keys()].filter((k) => k.includes('/actors/')).length, 3);
  });

  it('two invocations of one call racing from the same version do not fork the state', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    answerOf(await executeTask(call({ seq: 0, from: -1 }, [0]), { store, keyPrefix: '' }));
    const env = call({ seq: 1, from: 0, method: 'addRandom' }, []);
    const [a, b] = await Promise.all([executeTask(env, { store, keyPrefix: '' }), executeTask(env, { store, keyPrefix: '' })]);
    assert.equal(answerOf(a), answerOf(b));
    coldSandbox();
    assert.equal(answerOf(await executeTask(call({ seq: 2, from: 1, method: 'read' }, []), { store, keyPrefix: '' })), answerOf(a));
  });

  it('a method that throws commits its changes with the error; its duplicate throws the same error', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ seq: 0, from: -1 }, [1]), { store, keyPrefix: '' });
    const env = call({ seq: 1, from: 0, method: 'addThenThrow' }, [5]);
    const r1 = await executeTask(env, { store, keyPrefix: '' });
    const r2 = await executeTask(env, { store, keyPrefix: '' });
    assert.ok(r1.kind === 'error' && r2.kind === 'error');
    assert.equal(r2.error.message, r1.error.message);
    assert.equal(answerOf(await executeTask(call({ seq: 2, from: 1, method: 'read' }, []), { store, keyPrefix: '' })), 6);
  });

  it('a warm sandbox keeps its instance only when the call starts from its own last commit', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ seq: 0, from: -1 }, [0]), { store, keyPrefix: '' });
    await executeTask(call({ seq: 1, from: 0, method: 'add' }, [1]), { store, keyPrefix: '' });
    let gets = store.gets;
    assert.equal(answerOf(await executeTask(call({ seq: 2, from: 1, method: 'add' }, [1]), { store, keyPrefix: '' })), 2);
    assert.equal(store.gets, gets, 'warm: no state read');
    // Another sandbox moves the actor on (versions 3 and 4); this one still holds version 2.
    const other = new Map((globalThis as unknown as Record<symbol, Map<string, unknown>>)[Symbol.for('volley.actors')]);
    coldSandbox();
    await executeTask(call({ seq: 3, from: 2, method: 'add' }, [10]), { store, keyPrefix: '' });
    (globalThis as unknown as Record<symbol, Map<string, unknown>>)[Symbol.for('volley.actors')] = other;
    gets = store.gets;
    assert.equal(answerOf(await executeTask(call({ seq: 4, from: 3, method: 'add' }, [1]), { store, keyPrefix: '' })), 13, 'the stale instance was not used');
    assert.equal(store.gets, gets + 1, 'the stored version was read');
  });

  it('a call that did not run is a link to the version before it', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ seq: 0, from: -1 }, [4]), { store, keyPrefix: '' });
    await store.create(actorStateKey(JOB, 'Counter-x', 1), linkRecord(0));
    coldSandbox();
    assert.equal(answerOf(await executeTask(call({ seq: 2, from: 1, method: 'add' }, [1]), { store, keyPrefix: '' })), 5);
  });

  it('costs one state read (cold) and one write per call, each the size of the state', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ seq: 0, from: -1 }, [0]), { store, keyPrefix: '' });
    const w0 = store.bytesWritten;
    coldSandbox();
    const [g, c] = [store.gets, store.creates];
    await executeTask(call({ seq: 1, from: 0, method: 'add' }, [1]), { store, keyPrefix: '' });
    assert.equal(store.gets - g, 1);
    assert.equal(store.creates - c, 1);
    assert.ok(store.bytesWritten - w0 < 200, `a small state stays small: ${store.bytesWritten - w0} bytes`);
  });
});
