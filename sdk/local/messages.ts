/** Messages between the pool (driver) and a worker thread, tagged by `kind` like the envelopes they carry. */
import type { ResultEnvelope, TaskEnvelope } from '../protocol.js';

export type ToWorker = { kind: 'tasks'; envs: TaskEnvelope[] } | { kind: 'got'; id: number; bytes?: Uint8Array; error?: string } | { kind: 'stored'; id: number; error?: string };

export type FromWorker = { kind: 'ready' } | { kind: 'results'; results: ResultEnvelope[] } | { kind: 'get'; id: number; key: string } | { kind: 'put'; id: number; key: string; bytes: Uint8Array };
