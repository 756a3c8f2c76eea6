/**
 * Task modules that threw while a worker loaded them (driver code without the `isWorker()`
 * guard, a missing environment variable, a bad import). The worker keeps running and answers
 * each task that needs such a module with the module's error, as the task's own failure (fault
 * `user`: the user's code threw, so it is not retried as a system failure), naming the module.
 * The embedded runtime's worker threads load a task's module when its first task comes
 * (worker-thread.ts); a Lambda worker loads every task module of its bundle at INIT
 * (handlers/worker.ts), so one that throws there fails every task of the sandbox. Either way the
 * driver sees the same error, not a crashed worker retried, nor a task run without its module.
 */
import { toRemoteErrorInfo } from '../errors.js';
import { PROTOCOL_VERSION, type ResultEnvelope, type Timing } from '../protocol.js';

interface LoadFailure {
  /** The module as the user knows it: its path. */
  module: string;
  error: unknown;
  /** What the worker cannot run until the module loads, and how to get there. */
  consequence: string;
}

/** By the module's URL (embedded runtime). */
const byUrl = new Map<string, LoadFailure>();
/** A failure that every task of this worker answers (a Lambda bundle: its modules load as one). */
let everyTask: LoadFailure | undefined;

/** A task module (`url`, as the driver's task envelope names it) threw while this worker thread loaded it. */
export function recordModuleFailure(url: string, module: string, error: unknown): void {
  byUrl.set(url, { module, error, consequence: 'no task of that module can run in this worker; fix the module and run the driver again' });
}

/** A task module of the Lambda bundle threw at INIT: the sandbox answers every task with its error. */
export function recordBundleFailure(module: string, error: unknown): void {
  everyTask = {
    module,
    error,
    consequence: 'the worker bundle loads its task modules together, so no task of it can run until that module loads; fix it and deploy again (npx volley deploy, or restart the emulators)',
  };
}

/**
 * The answer for a task whose module could not load in this worker, or undefined when nothing
 * stands in its way. `module` is the task envelope's (the URL of the module that defined it).
 */
export function moduleFailureResult(taskId: string, module: string | undefined, timing: Timing): ResultEnvelope | undefined {
  const f = everyTask ?? (byUrl.size > 0 && module !== undefined ? byUrl.get(module) : undefined);
  if (!f) return undefined;
  const error = toRemoteErrorInfo(f.error);
  error.message = `${error.message} (thrown while the worker loaded task module ${f.module}: ${f.consequence})`;
  return { v: PROTOCOL_VERSION, kind: 'error', taskId, error, fault: 'user', timing };
}
