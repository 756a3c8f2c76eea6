/**
 * The Lambda entry point: the handler built by `createHandler` (sdk/aws/handler.ts), which
 * reads the function's environment on the first invocation and keeps it for warm ones.
 *
 * Once bundled, this module's URL is the bundle's: tasks run in worker threads that load the
 * bundle again (so every task module registers its tasks there too) and are terminated at
 * the task's deadline. In such a thread, `serveTaskThread()` takes over; elsewhere it does
 * nothing.
 */
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { createHandler, serveTaskThread, type Handler } from '../sdk/aws/handler.js';

serveTaskThread();

// Every task module of the bundle is loaded by now (they are imported before this module):
// the time since the runtime's process started is the sandbox's INIT phase, billed as duration.
// performance.now() counts from the process's start in every thread, so where the handler is
// loaded in a worker thread of a longer-lived process (serverless-offline) the time before that
// thread's environment was created is not this sandbox's.
const initMs = performance.now() - (isMainThread ? 0 : performance.nodeTiming.environment);
export const handler: Handler = createHandler(process.env, { taskThread: new URL(import.meta.url), initMs });
