/** Messages between the pool (driver) and a worker thread, tagged by `kind` like the envelopes they carry. */
import type { ResultEnvelope, TaskEnvelope } from '../protocol.js';

/** A store request's failure, as the driver's store raised it. */
export interface StoreFailure {
  message: string;
  code?: string;
  retryable?: boolean;
}

export type ToWorker =
  | { kind: 'tasks'; envs: TaskEnvelope[] }
  /** Cancel a task this worker was given: it never starts, or its signal is aborted. */
  | { kind: 'cancel'; taskId: string }
  | { kind: 'got'; id: number; bytes?: Uint8Array; error?: StoreFailure }
  | { kind: 'stored'; id: number; error?: StoreFailure };

export type FromWorker = { kind: 'ready' } | { kind: 'results'; results: ResultEnvelope[] } | { kind: 'get'; id: number; key: string } | { kind: 'put'; id: number; key: string; bytes: Uint8Array };
