/**
 * What every benchmarked system does, so that one workload driver measures them all alike.
 * A System lives in one child process: `start` is its start-up (pool or runtime creation,
 * whatever the system does before it can run a task), `stop` its tear-down.
 */
export interface System {
  readonly name: string;
  /** Untimed preparation, e.g. emulators standing in for a deployed stack. */
  setup?(): Promise<void>;
  start(): Promise<void>;
  /** W1: one task per duration, all at once; resolves with every result. */
  sleepFanout(seconds: readonly number[]): Promise<string[]>;
  /** W2: four size x size matrices, two products, one sum; only the sum reaches the driver. */
  matrixDag(size: number): Promise<{ checksum: number; matmulMs: number }>;
  /** n no-op tasks at once. */
  noops(n: number): Promise<void>;
  /** One no-op task, waited for: a round trip. */
  roundTrip(): Promise<void>;
  /** One object hop: a task receives `a` (through the store where the system has one) and returns its length. */
  hop(a: Float64Array): Promise<number>;
  /** A fan-in tree of sums over the inputs 0..n-1: n leaf tasks, n-1 sum tasks. */
  sumTree(n: number): Promise<number>;
  /** Lambda invocations sent so far (the AWS path: each costs a request fee and a slot of concurrency). */
  invocations?(): number;
  /** CPU time the Lambda side has used so far, ms (the emulator tier: serverless-offline's process, with its handler and task threads); undefined where it cannot be read. */
  workerCpuMs?(): number | undefined;
  /** Extra facts for the report (e.g. worker count). */
  info?(): Record<string, unknown>;
  stop(): Promise<void>;
}

export type SystemName = 'volley' | 'pool' | 'faast' | 'emulator';

export const SYSTEM_LABELS: Record<SystemName, string> = {
  pool: 'bare pool (tinypool, 16 threads)',
  volley: 'volley (embedded runtime)',
  faast: 'faast.js (local mode)',
  emulator: 'volley (emulator tier)',
};
