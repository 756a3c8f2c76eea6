/**
 * The embedded runtime's object store as seen from a worker thread: the driver's MemoryStore,
 * reached by messages that carry shared memory, not copies. Both ends live here: the worker's
 * ObjectStore that sends requests, and the driver's answer to them.
 */
import type { ObjectStore } from '../backend.js';
import { ObjectStoreError, UsageError, VolleyError, type VolleyErrorCode } from '../errors.js';
import { allocateShared, toShared } from './memory-store.js';
import type { FromWorker, StoreFailure, ToWorker } from './messages.js';

type StoreRequest = Extract<FromWorker, { kind: 'get' | 'put' }>;
type StoreReply = Extract<ToWorker, { kind: 'got' | 'stored' }>;

function failure(err: unknown): StoreFailure {
  const f: StoreFailure = { message: (err as Error)?.message ?? String(err) };
  if (err instanceof VolleyError) {
    f.code = err.code;
    f.retryable = err.retryable;
  }
  return f;
}

/**
 * Driver side: answers a worker's get or put against the driver's store (the MemoryStore, whose
 * bytes are shared memory; tests may wrap it). A failure keeps its code and retryable flag.
 */
export async function answerStoreRequest(store: ObjectStore, m: StoreRequest): Promise<StoreReply> {
  try {
    if (m.kind === 'get') return { kind: 'got', id: m.id, bytes: await store.get(m.key) };
    await store.put(m.key, m.bytes);
    return { kind: 'stored', id: m.id };
  } catch (err) {
    return { kind: m.kind === 'get' ? 'got' : 'stored', id: m.id, error: failure(err) };
  }
}

/** Worker side: an ObjectStore whose requests go out through `send`; feed the driver's replies to `onReply`. */
export function storeClient(send: (m: FromWorker) => void): { store: ObjectStore; onReply: (m: StoreReply) => void } {
  let nextId = 0;
  const waiting = new Map<number, { resolve: (b: Uint8Array | undefined) => void; reject: (e: Error) => void; key: string }>();
  const request = (m: StoreRequest): Promise<Uint8Array | undefined> =>
    new Promise((resolve, reject) => {
      waiting.set(m.id, { resolve, reject, key: m.key });
      send(m);
    });
  const store: ObjectStore = {
    async get(key) {
      return (await request({ kind: 'get', id: ++nextId, key }))!;
    },
    async put(key, bytes) {
      await request({ kind: 'put', id: ++nextId, key, bytes: toShared(bytes) });
    },
    async deletePrefix() {
      throw new UsageError('tasks cannot delete stored objects: the driver frees them');
    },
    allocate: allocateShared,
  };
  const onReply = (m: StoreReply) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (!w) return;
    if (m.error) w.reject(new ObjectStoreError(m.error.message, w.key, { retryable: m.error.retryable }, (m.error.code as VolleyErrorCode | undefined) ?? 'OBJECT_STORE'));
    else w.resolve(m.kind === 'got' ? m.bytes : undefined);
  };
  return { store, onReply };
}
