import type { Backend } from '../backend.js';
import { DEFAULT_PAYLOAD_LIMIT_BYTES } from '../envelope.js';
import type { ResolvedInitOptions } from '../options.js';
import { MemoryStore } from './memory-store.js';
import { WorkerPool } from './pool.js';

/** The embedded runtime: worker threads on this machine sharing an in-memory object store. */
export function createLocalBackend(options: ResolvedInitOptions): Backend & { pool: WorkerPool; store: MemoryStore } {
  const store = new MemoryStore();
  const pool = new WorkerPool({ ...options.local, maxTaskDepth: options.maxTaskDepth }, store);
  return {
    name: 'local',
    invoker: pool,
    pool,
    store,
    maxConcurrency: options.maxConcurrency,
    keyPrefix: '',
    // Threads take any size; keeping Lambda's limit keeps the two targets alike.
    payloadLimitBytes: DEFAULT_PAYLOAD_LIMIT_BYTES,
  };
}
