/**
 * The default runtime used by the top-level functions (`init`, `get`, `put`, `wait`,
 * `shutdown`, `rf.remote`). Library code never reaches for it otherwise: a Runtime can be
 * created and used explicitly instead.
 */
import { UsageError } from './errors.js';
import type { InitOptions } from './options.js';
import { Runtime } from './runtime.js';
import { taskSession, type Session } from './worker/nested.js';

const WORKER_FLAG = Symbol.for('volley.worker');

let defaultRuntime: Runtime | undefined;

/**
 * True in a volley worker (a worker thread of the embedded runtime, or Lambda), where task
 * modules are imported: driver code at a module's top level must not run there. Inside a
 * task's function it is true as well, and `.remote()`, `put`, `get` and `wait` go to that
 * running task (nested tasks). @public
 */
export function isWorker(): boolean {
  return (globalThis as Record<symbol, unknown>)[WORKER_FLAG] === true;
}

/** Marks this thread or process as a worker. @internal */
export function markWorker(): void {
  (globalThis as Record<symbol, unknown>)[WORKER_FLAG] = true;
}

function refuseInWorker(what: string): void {
  if (isWorker()) {
    throw new UsageError(
      `${what} was called inside a worker. Driver code must not run when a worker imports your module: ` +
        'guard it with `if (!isWorker()) await main();` (import { isWorker } from "volley"). Inside a task\'s function, .remote(), put(), get() and wait() work as in the driver.',
    );
  }
}

/** Starts the default runtime. @public */
export async function init(options?: InitOptions): Promise<Runtime> {
  refuseInWorker('init()');
  if (defaultRuntime && !defaultRuntime.isShutdown) {
    throw new UsageError('init() was called twice: the default runtime is already running; call shutdown() first, or create another with new Runtime(options)');
  }
  defaultRuntime = new Runtime(options);
  await defaultRuntime.ready();
  return defaultRuntime;
}

/**
 * Where `rf.remote()` and `put()` go: inside a running task, that task's session (nested
 * tasks); otherwise the default runtime, started with default options on first use (like `ray.init()`).
 */
export function currentRuntime(): Session {
  if (defaultRuntime && !defaultRuntime.isShutdown) return defaultRuntime;
  if (isWorker()) {
    const s = taskSession();
    if (s) return s;
    refuseInWorker('.remote()/put()');
  }
  defaultRuntime = new Runtime();
  return defaultRuntime;
}

/** Stops the default runtime: workers, connections and the job's stored objects. @public */
export async function shutdown(): Promise<void> {
  const rt = defaultRuntime;
  defaultRuntime = undefined;
  if (rt) await rt.shutdown();
}
