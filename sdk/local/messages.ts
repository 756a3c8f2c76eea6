/** Messages between the pool (driver) and a worker thread. */
import type { ResultEnvelope, TaskEnvelope } from '../protocol.js';

export type ToWorker =
  | { t: 'tasks'; envs: TaskEnvelope[] }
  | { t: 'got'; id: number; bytes?: Uint8Array; error?: string }
  | { t: 'stored'; id: number; error?: string };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'results'; results: ResultEnvelope[] }
  | { t: 'get'; id: number; key: string }
  | { t: 'put'; id: number; key: string; bytes: Uint8Array };
