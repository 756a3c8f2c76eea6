/**
 * The Lambda entry point: the bundle's entry (infra/bundle.ts) marks the process a worker
 * (mark-worker.ts), then awaits `startWorker` with a loader for each task module, and exports
 * the handler it makes: `createHandler` (sdk/aws/handler.ts), which reads the function's
 * environment on the first invocation and keeps it for warm ones.
 *
 * Once bundled, this module's URL is the bundle's: tasks run in worker threads that load the
 * bundle again (so every task module registers its tasks there too) and are terminated at
 * the task's deadline. In such a thread, `serveTaskThread()` takes over; elsewhere it does
 * nothing.
 */
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { createHandler, serveTaskThread, type Handler } from '../sdk/aws/handler.js';
import { taskNames } from '../sdk/registry.js';
import { recordBundleFailure } from '../sdk/worker/load-failure.js';

/**
 * Loads the task modules in order (at INIT: the bundle's entry awaits this at its top level),
 * then serves. A module that throws while it loads (driver code without the isWorker() guard,
 * a missing environment variable) does not fail INIT, which Lambda would answer with a
 * FunctionError that the driver takes for a crashed worker and retries: the modules after it
 * still load, and its tasks (those it registered before it threw, and tasks no module
 * registered) are answered with its error, naming it (load-failure.ts), as the embedded runtime
 * answers the tasks of a module that threw; the other modules' tasks run.
 *
 * @param modules - each task module's path (relative to the project) and its import().
 */
export async function startWorker(modules: ReadonlyArray<readonly [string, () => Promise<unknown>]>): Promise<Handler> {
  for (const [module, load] of modules) {
    // The modules load one at a time, and the registry keeps the order tasks registered in: the
    // names it gained meanwhile are this module's (and those of the modules it imported first).
    const before = taskNames().length;
    try {
      await load();
    } catch (err) {
      recordBundleFailure(module, err, taskNames().slice(before));
    }
  }
  serveTaskThread();
  // Every task module of the bundle is loaded by now: the time since the runtime's process
  // started is the sandbox's INIT phase, billed as duration. performance.now() counts from the
  // process's start in every thread, so where the handler is loaded in a worker thread of a
  // longer-lived process (serverless-offline) the time before that thread's environment was
  // created is not this sandbox's.
  const initMs = performance.now() - (isMainThread ? 0 : performance.nodeTiming.environment);
  return createHandler(process.env, { taskThread: new URL(import.meta.url), initMs });
}
