/**
 * Task modules that threw while a worker loaded them (driver code without the `isWorker()`
 * guard, a missing environment variable, a bad import). The worker keeps running and answers
 * each task that needs such a module with the module's error, as the task's own failure (fault
 * `user`: the user's code threw, so it is not retried as a system failure), naming the module.
 * Only that module's tasks fail: the other modules' tasks run.
 *
 * The embedded runtime's worker threads load a task's module when its first task comes
 * (worker-thread.ts), and know a task's module by its URL, as the task envelope names it. A
 * Lambda worker loads every task module of its bundle at INIT, one after another
 * (handlers/worker.ts); the envelope names the module as the driver loaded it (its URL on the
 * driver's machine, maybe compiled JavaScript where the bundle has TypeScript), so a failed
 * module's tasks are known by name instead: those it registered before it threw. A task that no
 * module registered, while some module failed, is most likely one the failed module would have
 * registered after the point where it threw: it is answered with that module's error (of the
 * failed modules, the one whose path matches the envelope's; when none or several match, with
 * every failed module's error named). With no module failed, a task not found is a
 * TaskNotFoundError (execute.ts), as always. Either way the driver sees the same error as on
 * the embedded runtime, not a crashed worker retried, nor a task run without its module.
 */
import { fileURLToPath } from 'node:url';
import { TaskNotFoundError, toRemoteErrorInfo } from '../errors.js';
import { PROTOCOL_VERSION, type ResultEnvelope, type TaskEnvelope, type Timing } from '../protocol.js';

interface LoadFailure {
  /** The module as the user knows it: its path. */
  module: string;
  error: unknown;
  /** What the worker cannot run until the module loads, and how to get there. */
  consequence: string;
  /** `module` lists several modules. */
  several?: boolean;
}

/** By the module's URL (embedded runtime). */
const byUrl = new Map<string, LoadFailure>();
/** Lambda bundle modules that threw at INIT, in load order, each with the tasks it registered before it threw. */
const bundleFailures: Array<LoadFailure & { tasks: ReadonlySet<string> }> = [];

const BUNDLE_CONSEQUENCE = "no task of that module can run in this sandbox (the bundle's other modules load and run); fix it and deploy again (npx volley deploy, or restart the emulators)";

/** A task module (`url`, as the driver's task envelope names it) threw while this worker thread loaded it. */
export function recordModuleFailure(url: string, module: string, error: unknown): void {
  byUrl.set(url, { module, error, consequence: 'no task of that module can run in this worker; fix the module and run the driver again' });
}

/**
 * A task module of the Lambda bundle (`module`: its path in the project) threw at INIT, after
 * registering the tasks named `tasks`: they, and tasks no module registered, are answered with
 * its error.
 */
export function recordBundleFailure(module: string, error: unknown, tasks: Iterable<string>): void {
  bundleFailures.push({ module, error, consequence: BUNDLE_CONSEQUENCE, tasks: new Set(tasks) });
}

/**
 * A path's segments without the last one's extension: `file:///p/dist/src/a.js` and `src/a.ts`
 * both end in `src`, `a`. A file URL is decoded first (`my%20jobs` is the folder `my jobs`); one
 * that is not a local file's URL is compared as written.
 */
function stemSegments(path: string): string[] {
  let local = path;
  if (path.startsWith('file:')) {
    try {
      local = fileURLToPath(path);
    } catch {
      local = path.replace(/^file:\/\//, '');
    }
  }
  const segs = local.split(/[\\/]+/).filter(Boolean);
  if (segs.length) segs[segs.length - 1] = segs.at(-1)!.replace(/\.[cm]?[jt]sx?$/, '');
  return segs;
}

/** How many trailing segments the two paths share (0: not even the file's name). */
function sharedTail(a: string[], b: string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[a.length - 1 - n] === b[b.length - 1 - n]) n++;
  return n;
}

/** The bundle failure a task that no module registered is answered with; undefined when no module failed. */
function failureForUnregistered(env: Pick<TaskEnvelope, 'fn' | 'module'>): LoadFailure | undefined {
  if (bundleFailures.length <= 1) return bundleFailures[0];
  const wanted = env.module !== undefined ? stemSegments(env.module) : [];
  const scores = bundleFailures.map((f) => sharedTail(stemSegments(f.module), wanted));
  const best = Math.max(...scores);
  if (best > 0 && scores.filter((s) => s === best).length === 1) return bundleFailures[scores.indexOf(best)];
  // Several modules threw and the envelope does not say which one defines the task: name them all.
  const each = bundleFailures.map((f) => {
    const e = toRemoteErrorInfo(f.error);
    return `${f.module} (${e.name}: ${e.message})`;
  });
  return {
    module: bundleFailures.map((f) => f.module).join(', '),
    several: true,
    error: new TaskNotFoundError(
      `task ${JSON.stringify(env.fn)} is not registered in this worker, and ${bundleFailures.length} task modules threw while it loaded them, before it could register: ${each.join('; ')}`,
    ),
    consequence: `the task is most likely defined in one of them; ${BUNDLE_CONSEQUENCE.replace('that module', 'those modules').replace('fix it', 'fix them')}`,
  };
}

/**
 * The answer for a task whose module could not load in this worker, or undefined when nothing
 * stands in its way. The envelope's `module` is the URL of the module that defined the task on
 * the driver. `err`, when given, is what resolving or reading the task threw: a
 * TaskNotFoundError is answered with a Lambda bundle module's failure, if one failed.
 */
export function moduleFailureResult(env: Pick<TaskEnvelope, 'taskId' | 'fn' | 'module'>, timing: Timing, err?: unknown): ResultEnvelope | undefined {
  // Every task asks: when no module failed to load here (the common case), nothing stands in its way.
  if (byUrl.size === 0 && bundleFailures.length === 0) return undefined;
  return failureResult(env, timing, err);
}

function failureResult(env: Pick<TaskEnvelope, 'taskId' | 'fn' | 'module'>, timing: Timing, err: unknown): ResultEnvelope | undefined {
  const f =
    (byUrl.size > 0 && env.module !== undefined ? byUrl.get(env.module) : undefined) ??
    bundleFailures.find((b) => b.tasks.has(env.fn)) ??
    (err instanceof TaskNotFoundError ? failureForUnregistered(env) : undefined);
  if (!f) return undefined;
  const error = toRemoteErrorInfo(f.error);
  error.message = `${error.message} (thrown while the worker loaded task module${f.several ? 's' : ''} ${f.module}: ${f.consequence})`;
  return { v: PROTOCOL_VERSION, kind: 'error', taskId: env.taskId, error, fault: 'user', timing };
}
