/**
 * The Lambda entry point: the handler built by `createHandler` (sdk/aws/handler.ts), which
 * reads the function's environment on the first invocation and keeps it for warm ones.
 *
 * Once bundled, this module's URL is the bundle's: tasks run in worker threads that load the
 * bundle again (so every task module registers its tasks there too) and are terminated at
 * the task's deadline. In such a thread, `serveTaskThread()` takes over; elsewhere it does
 * nothing.
 */
import { createHandler, serveTaskThread, type Handler } from '../sdk/aws/handler.js';

serveTaskThread();

// Every task module of the bundle is loaded by now (they are imported before this module):
// the time since the runtime's process started is the sandbox's INIT phase, billed as duration.
export const handler: Handler = createHandler(process.env, { taskThread: new URL(import.meta.url), initMs: performance.now() });
