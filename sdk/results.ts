/**
 * What a task's outcome means for its ref: a result envelope becomes a payload or a TaskError;
 * an invocation that failed outright becomes a TaskError; workers' timings add up per function.
 */
import { ConfigError, TaskError, VolleyError } from './errors.js';
import type { Payload, ResultEnvelope, Timing } from './protocol.js';

/** Per-function totals of what workers reported, for profiling. @public */
export interface TaskStats {
  tasks: number;
  fetchMs: number;
  runMs: number;
  storeMs: number;
}

/** The payload of a task's result, or the error that settles its ref. */
export function outcomeOf(fn: string, taskId: string, res: ResultEnvelope): { payload: Payload } | { error: TaskError } {
  if (res.kind === 'error') return { error: TaskError.fromRemote(fn, taskId, res.error, res.fault, res.logs) };
  return { payload: payloadOf(res) };
}

/** Where the value a task returned is: in the result itself, or in the store. */
export function payloadOf(res: ResultEnvelope & { kind: 'value' | 'stored' }): Payload {
  return res.kind === 'value' ? { kind: 'inline', bytes: res.bytes } : { kind: 'stored', key: res.key, size: res.size };
}

/** The error of a task that could not be run at all (the invoker rejected). */
export function invokeFailure(fn: string, taskId: string, err: unknown): TaskError | ConfigError {
  // A ConfigError (no worker can load the task's module) is the same for every task: pass it on.
  if (err instanceof TaskError || err instanceof ConfigError) return err;
  return new TaskError(`Task ${fn} (${taskId}) could not be run: ${(err as Error)?.message ?? String(err)}`, {
    functionName: fn,
    taskId,
    fault: 'infrastructure',
    cause: err,
    retryable: err instanceof VolleyError && err.retryable,
  });
}

/** Adds one run's timing to its function's totals. */
export function addTiming(stats: Map<string, TaskStats>, fn: string, timing: Timing): void {
  const s = stats.get(fn) ?? { tasks: 0, fetchMs: 0, runMs: 0, storeMs: 0 };
  s.tasks++;
  s.fetchMs += timing.fetchMs;
  s.runMs += timing.runMs;
  s.storeMs += timing.storeMs;
  stats.set(fn, s);
}
