/**
 * The store-backed actor path (Lambda, the emulator, LocalStack) against a store that honours
 * conditional writes: duplicated and retried invocations of one call, calls of two callers
 * racing for the same version, warm sandboxes. The worker side runs for real (executeTask);
 * only the store is a fake.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ObjectStore } from '../../sdk/backend.js';
import { PROTOCOL_VERSION, type ResultEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';
import { decode, encodeArgs } from '../../sdk/serialize.js';
import { executeTask } from '../../sdk/worker/execute.js';
import { ObjectStoreError } from '../../sdk/errors.js';
import type { ActorCallSpec } from '../../sdk/worker/actor.js';
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
  /** Reads of a key that is not there (S3 answers 404 NoSuchKey: no bytes). */
  misses = 0;
  creates = 0;
  puts = 0;
  bytesRead = 0;
  bytesWritten = 0;
  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.puts++;
    this.objects.set(key, bytes.slice());
  }
  async create(key: string, bytes: Uint8Array): Promise<boolean> {
    this.creates++;
    if (this.objects.has(key)) return false;
    this.bytesWritten += bytes.byteLength;
    this.objects.set(key, bytes.slice());
    return true;
  }
  async get(key: string): Promise<Uint8Array> {
    const b = this.objects.get(key);
    if (!b) {
      this.misses++;
      throw new ObjectStoreError(`NoSuchKey: ${key}`, key, undefined, 'OBJECT_MISSING');
    }
    this.gets++;
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
  if (spec.method === undefined && !spec.kill) spec = { g: 'gen1', ...spec };
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
  const ctx = (store: ObjectStore) => ({ store, keyPrefix: '' });
  const versions = (store: ConditionalStore) => [...store.objects.keys()].filter((k) => /\/actors\/[^/]+\/v\d+$/.test(k)).length;

  it('a duplicated invocation of a call answers the committed result and never commits twice', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    answerOf(await executeTask(call({ from: -1 }, [0]), ctx(store)));
    const env = call({ from: 0, method: 'addRandom' }, []);
    const first = answerOf(await executeTask(env, ctx(store))) as number;
    coldSandbox();
    // The same event again (a retry after a lost response, or a duplicate delivery).
    const second = answerOf(await executeTask(env, ctx(store))) as number;
    assert.equal(second, first, 'the duplicate answers what the first committed');
    const next = answerOf(await executeTask(call({ from: 1, method: 'read' }, []), ctx(store)));
    assert.equal(next, first, "the state is the first run's, applied once");
    assert.equal(versions(store), 3);
  });

  it('two invocations of one call racing from the same version do not fork the state', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    answerOf(await executeTask(call({ from: -1 }, [0]), ctx(store)));
    const env = call({ from: 0, method: 'addRandom' }, []);
    const [a, b] = await Promise.all([executeTask(env, ctx(store)), executeTask(env, ctx(store))]);
    assert.equal(answerOf(a), answerOf(b));
    coldSandbox();
    assert.equal(answerOf(await executeTask(call({ from: 0, method: 'read' }, []), ctx(store))), answerOf(a));
    assert.equal(versions(store), 3);
  });

  it('calls of two callers starting from the same version each append after the newest: none is lost or applied twice', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    answerOf(await executeTask(call({ from: -1 }, [0]), ctx(store)));
    // Eight callers that all know only version 0, racing (as parallel tasks holding one handle).
    const envs = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => call({ from: 0, method: 'add' }, [n]));
    coldSandbox();
    const sums = (await Promise.all(envs.map((e) => executeTask(e, ctx(store))))).map(answerOf) as number[];
    assert.deepEqual(
      [...sums].sort((x, y) => x - y),
      [...new Set(sums)].sort((x, y) => x - y),
      'each call saw its own state',
    );
    assert.equal(Math.max(...sums), 36);
    // A duplicate of one of them, arriving after all of them, finds its call on the way and does not add again.
    coldSandbox();
    assert.equal(answerOf(await executeTask(envs[3]!, ctx(store))), sums[3]);
    coldSandbox();
    assert.equal(answerOf(await executeTask(call({ from: 0, method: 'read' }, []), ctx(store))), 36);
    assert.equal(versions(store), 10);
  });

  it('a method that throws commits its changes with the error; its duplicate throws the same error', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ from: -1 }, [1]), ctx(store));
    const env = call({ from: 0, method: 'addThenThrow' }, [5]);
    const r1 = await executeTask(env, ctx(store));
    const r2 = await executeTask(env, ctx(store));
    assert.ok(r1.kind === 'error' && r2.kind === 'error');
    assert.equal(r2.error.message, r1.error.message);
    assert.equal(answerOf(await executeTask(call({ from: 1, method: 'read' }, []), ctx(store))), 6);
  });

  it('a warm sandbox keeps its instance only when it has seen every version since the call starts', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ from: -1 }, [0]), ctx(store));
    await executeTask(call({ from: 0, method: 'add' }, [1]), ctx(store));
    let read = store.bytesRead;
    assert.equal(answerOf(await executeTask(call({ from: 1, method: 'add' }, [1]), ctx(store))), 2);
    assert.equal(store.bytesRead, read, 'warm: no state read (only a look for a newer version, which is absent)');
    // Another sandbox moves the actor on (version 3); this one still holds version 2.
    const other = new Map((globalThis as unknown as Record<symbol, Map<string, unknown>>)[Symbol.for('volley.actors')]);
    coldSandbox();
    await executeTask(call({ from: 2, method: 'add' }, [10]), ctx(store));
    (globalThis as unknown as Record<symbol, Map<string, unknown>>)[Symbol.for('volley.actors')] = other;
    read = store.gets;
    assert.equal(answerOf(await executeTask(call({ from: 2, method: 'add' }, [1]), ctx(store))), 13, 'the stale instance was not used');
    assert.equal(store.gets, read + 1, 'the newer version was read');
  });

  it("a caller's next call starts where its last one committed (the call index), not from an older version", async () => {
    const store = new ConditionalStore();
    coldSandbox();
    const ctor = call({ from: -1 }, [0]);
    await executeTask(ctor, ctx(store));
    let last = ctor.taskId;
    for (let i = 0; i < 5; i++) {
      const env = call({ from: -1, method: 'add', after: [last] }, [1]);
      await executeTask(env, ctx(store));
      last = env.taskId;
    }
    coldSandbox();
    const gets = store.gets;
    assert.equal(answerOf(await executeTask(call({ from: -1, method: 'read', after: ['never-committed', last] }, []), ctx(store))), 5);
    assert.equal(store.gets - gets, 2, 'the index entry and the one version it names');
  });

  it('a killed actor fails later calls of every caller with ActorDiedError', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ from: -1 }, [0]), ctx(store));
    await executeTask(call({ from: 0, kill: true, g: 'gen1' }, []), ctx(store));
    coldSandbox();
    const res = await executeTask(call({ from: 0, method: 'add', g: 'gen1' }, [1]), ctx(store));
    assert.ok(res.kind === 'error' && res.error.code === 'ACTOR_DIED' && /killed/.test(res.error.message), JSON.stringify(res));
  });

  it('costs one state read (cold), one look for a newer version, one state write and one small index write per call', async () => {
    const store = new ConditionalStore();
    coldSandbox();
    await executeTask(call({ from: -1 }, [0]), ctx(store));
    const w0 = store.bytesWritten;
    coldSandbox();
    const [g, m, c, p] = [store.gets, store.misses, store.creates, store.puts];
    await executeTask(call({ from: 0, method: 'add' }, [1]), ctx(store));
    assert.equal(store.gets - g, 1);
    assert.equal(store.misses - m, 1);
    assert.equal(store.creates - c, 1);
    assert.equal(store.puts - p, 1);
    assert.ok(store.bytesWritten - w0 < 200, `a small state stays small: ${store.bytesWritten - w0} bytes`);
  });
});
