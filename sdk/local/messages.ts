/** Messages between the pool (driver) and a worker thread, tagged by `kind` like the envelopes they carry. */
import type { AwaitReply, AwaitRequest, NestedSubmit } from '../backend.js';
import type { RemoteErrorInfo } from '../errors.js';
import type { Packed } from './wire.js';

/** A store request's failure, as the driver's store raised it. */
export interface StoreFailure {
  message: string;
  code?: string;
  retryable?: boolean;
}

export type ToWorker =
  /** Task envelopes, packed (wire.ts). */
  | { kind: 'tasks'; batch: Packed }
  /** Cancel a task this worker was given: it never starts, or its signal is aborted. */
  | { kind: 'cancel'; taskId: string }
  | { kind: 'got'; id: number; bytes?: Uint8Array; error?: StoreFailure }
  | { kind: 'stored'; id: number; error?: StoreFailure }
  /** Tasks given to the worker that it must not run: the pool queued them elsewhere (they were behind a task that blocked). */
  | { kind: 'drop'; taskIds: string[] }
  /** The answer to a running task's `await`. */
  | { kind: 'awaited'; id: number; reply?: AwaitReply; error?: RemoteErrorInfo };

export type FromWorker =
  | { kind: 'ready' }
  /** Result envelopes, packed (wire.ts). */
  | { kind: 'results'; batch: Packed }
  | { kind: 'get'; id: number; key: string }
  | { kind: 'put'; id: number; key: string; bytes: Uint8Array }
  /** A running task (`parent`) started a task, stored an object, or waits for refs it made. */
  | { kind: 'submit'; parent: string; task: NestedSubmit }
  | { kind: 'object'; parent: string; id: string; bytes: Uint8Array }
  | { kind: 'await'; parent: string; id: number; req: AwaitRequest }
  /** A running task (`parent`) cancels a task it started. */
  | { kind: 'cancel'; parent: string; id: string; force: boolean; recursive: boolean };
