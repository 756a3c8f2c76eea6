/**
 * A runtime on the embedded target with faults injected: the package's own worker pool and
 * MemoryStore (so worker threads load the same volley as the tasks), wrapped by FaultyStore
 * (which the workers' store requests go through too) and FaultyInvoker. Shared by the local
 * fault-injection tests and `npm run soak`.
 */
import { Runtime, type InitOptions } from 'volley';
import type { Backend, Invoker, ObjectStore } from '../sdk/backend.js';
import type { ResolvedLocalOptions } from '../sdk/options.js';
import { FaultyInvoker, FaultyStore, seeded, type FaultCounts, type InvokerFaults, type StoreFaults } from './faults.js';

type StoreClass = new () => ObjectStore & { keys(): string[] };
type PoolClass = new (options: ResolvedLocalOptions, store: ObjectStore) => Invoker;

let classes: Promise<{ MemoryStore: StoreClass; WorkerPool: PoolClass }> | undefined;

/** The classes behind the package's local backend, taken from a runtime that never runs a task. */
function localClasses(): Promise<{ MemoryStore: StoreClass; WorkerPool: PoolClass }> {
  classes ??= (async () => {
    const rt = new Runtime({ target: 'local' });
    const b = (await (rt as unknown as { starting: Promise<{ pool: object; store: object }> }).starting) as { pool: object; store: object };
    const found = { MemoryStore: b.store.constructor as StoreClass, WorkerPool: b.pool.constructor as PoolClass };
    await rt.shutdown();
    return found;
  })();
  return classes;
}

export interface FaultyLocal {
  rt: Runtime;
  store: FaultyStore;
  invoker: FaultyInvoker;
  /** The real store under the wrapper: what is left in it after shutdown is a leak. */
  inner: ObjectStore & { keys(): string[] };
}

export async function faultyLocalRuntime(seed: number, faults: { invoker: InvokerFaults; store: StoreFaults }, counts: FaultCounts, options?: InitOptions): Promise<FaultyLocal> {
  const { MemoryStore, WorkerPool } = await localClasses();
  const random = seeded(seed);
  const inner = new MemoryStore();
  const isResultKey = (k: string) => /\/dagNode-[0-9a-z]+$/.test(k);
  const store = new FaultyStore(inner, faults.store, random, isResultKey, counts);
  const pool = new WorkerPool({ maxWorkers: 2, minWorkers: 0, idleTimeoutMs: 30_000 }, store);
  const invoker = new FaultyInvoker(pool, faults.invoker, random, counts);
  const backend: Backend = { name: 'local', invoker, store, maxConcurrency: 64, keyPrefix: '' };
  const rt = new Runtime({ retryBaseDelayMs: 2, retryMaxDelayMs: 20, ...options }, { backend });
  return { rt, store, invoker, inner };
}
