/**
 * Entry point of an embedded-runtime worker thread: the local twin of the Lambda handler.
 * It runs one task at a time through the shared worker-side code; its object store is the
 * driver's MemoryStore, reached through store-channel.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { markWorker } from '../context.js';
import type { AwaitReply } from '../backend.js';
import { reviveError, TaskCancelledError } from '../errors.js';
import { runTask } from '../worker/execute.js';
import { recordModuleFailure } from '../worker/load-failure.js';
import type { RunningTask } from '../worker/task-context.js';
import { errorResult, type ResultEnvelope, type TaskEnvelope } from '../protocol.js';
import type { FromWorker, ToWorker } from './messages.js';
import { storeClient } from './store-channel.js';
import { ThreadSession, type ThreadLink } from './thread-session.js';
import { packResults, unpackTasks, type NotStarted, type ThreadTask } from './wire.js';

markWorker();
const port = parentPort!;
/** Where this worker marks the position in its batch of the task it is running. */
const { progress, maxTaskDepth } = workerData as { progress: Int32Array; maxTaskDepth: number };
/** The global `performance`, read once: on Node it is a lazy global, whose getter runs on every read. */
const clock = performance;
/** Results are sent together at most this far apart, and at once after a slower task. */
const FLUSH_MS = 2;
const send = (m: FromWorker) => port.postMessage(m);

const { store, onReply } = storeClient(send);

/** Node's errors for a module that no loader of this thread can read (as opposed to one that throws). */
const LOADER_ERRORS = new Set(['ERR_UNKNOWN_FILE_EXTENSION', 'ERR_UNKNOWN_MODULE_FORMAT', 'ERR_UNSUPPORTED_ESM_URL_SCHEME', 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING']);

/**
 * A worker thread runs with the driver's execArgv, so loader flags (--import <loader>,
 * --experimental-strip-types) apply here too; hooks that a loader registers only on the main
 * thread do not (Node gives each thread its own hooks).
 */
function loaderError(url: string, err: unknown): unknown {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !LOADER_ERRORS.has(code)) return err;
  const flags = process.execArgv.length ? `node ${process.execArgv.join(' ')}` : 'node without loader flags';
  return new ConfigError(
    `worker threads cannot load the task module ${url.startsWith('file:') ? fileURLToPath(url) : url}: ${(err as Error).message}. ` +
      `The driver ran as ${flags}; worker threads get the same flags, but not the hooks a loader registers on the main thread only ` +
      `(as tsx does before Node 22.22.3 and 24.11.1). Fix: use a loader that reaches worker threads ` +
      `(node --experimental-strip-types on Node 22.6+, or tsx on Node 22.22.3+ or 24.11.1+), or compile the tasks to JavaScript (tsc) and run node`,
    { cause: err },
  );
}

/** Results of finished tasks not sent yet (see FLUSH_MS). */
let pending: Array<ResultEnvelope | NotStarted> = [];
function flushResults(): void {
  if (pending.length === 0) return;
  const batch = packResults(pending);
  port.postMessage({ kind: 'results', batch } satisfies FromWorker, batch.bytes ? [batch.bytes] : undefined);
  pending = [];
}

/** A running task's get/wait calls waiting for the driver's answer, by request id. */
const awaiting = new Map<number, { resolve: (r: AwaitReply) => void; reject: (e: Error) => void }>();
let awaitSeq = 0;
const link: ThreadLink = {
  send,
  store,
  maxTaskDepth,
  request: (parent, req) =>
    new Promise((resolve, reject) => {
      const id = ++awaitSeq;
      awaiting.set(id, { resolve, reject });
      // The task may wait long: what finished before it must not wait with it.
      flushResults();
      send({ kind: 'await', parent, id, req });
    }),
};
const session = (env: TaskEnvelope) => new ThreadSession(env, link);

const modules = new Map<string, Promise<unknown>>();
const loadModule = (url: string) => {
  let p = modules.get(url);
  if (!p) {
    p = import(url).catch((err: unknown) => {
      const e = loaderError(url, err);
      // A module that threw (not one no loader here can read): each of its tasks fails with that error.
      if (!(e instanceof ConfigError)) recordModuleFailure(url, url.startsWith('file:') ? fileURLToPath(url) : url, e);
      throw e;
    });
    modules.set(url, p);
  }
  return p;
};

/** Tasks received and not yet run; they run one at a time, in order. */
const queue: ThreadTask[] = [];
/**
 * Chaining: how many queued followers take each task's result as an argument, and those
 * results once the tasks ran, kept until the last of those followers has had its turn.
 */
const wanted = new Map<string, number>();
const answers = new Map<string, ResultEnvelope>();

function want(t: ThreadTask): void {
  if (t.after) for (const id of t.after) wanted.set(id, (wanted.get(id) ?? 0) + 1);
}

function unwant(t: ThreadTask): void {
  if (!t.after) return;
  for (const id of t.after) {
    const n = (wanted.get(id) ?? 0) - 1;
    if (n > 0) wanted.set(id, n);
    else {
      wanted.delete(id);
      answers.delete(id);
    }
  }
}

/**
 * A follower's envelope with the arguments it takes from its producers' results filled in:
 * exactly what those tasks answer the driver (an inline value, or a stored object's key).
 * False when one of them did not succeed with a value holding no refs (failed, not run here):
 * the follower is not started, and the driver dispatches it once its arguments are ready.
 */
function follow(env: TaskEnvelope, after: readonly string[]): boolean {
  for (const id of after) {
    const r = answers.get(id);
    if (r?.kind === 'value' && r.refs === undefined) env.deps[id] = { kind: 'inline', bytes: r.bytes };
    else if (r?.kind === 'stored' && r.refs === undefined) env.deps[id] = { kind: 'stored', key: r.key, size: r.size };
    else return false;
  }
  return true;
}
/** Tasks cancelled before they started: skipped (answered as cancelled) when their turn comes. */
const cancelled = new Set<string>();
/** The task running now, whose signal a cancel aborts. */
let current: RunningTask | undefined;
const onStart = (t: RunningTask) => {
  current = t;
};
let running = false;
/** Sequence number of the next task this worker runs (the pool counts results the same way). */
let seq = 0;

/** The context every task of this thread runs with; the embedded runtime's store has no key prefix (local/backend.ts). */
const context = { store, loadModule, onStart, keyPrefix: '', session };
/** When the running task started, and when results last went out (see FLUSH_MS). */
let started = 0;
let lastFlush = 0;

/**
 * Runs queued tasks one after another; see FLUSH_MS for when results go out. Synchronous while
 * tasks answer at once (runTask): a task that waits continues the queue in `resume` once it
 * has answered (the queue is then still running).
 *
 * Each worker thread compiles this code for itself, and a tree of tiny tasks is over before
 * compiling it pays: the loop is kept tiny, and a task's turn is split in small functions
 * (`step`, `finish`) that are not hot enough to be compiled in the first thousand tasks, nor
 * large once they are; the rare turns (a task cancelled before it started, a follower not
 * started, a malformed envelope, a task that waits) are in functions of their own.
 */
function runQueue(): void {
  if (!running) {
    running = true;
    lastFlush = clock.now();
  }
  while (queue.length > 0) {
    const t = queue.shift()!;
    const res = step(t);
    if (res instanceof Promise) {
      void resume(t, res);
      return;
    }
    finish(t, res);
  }
  running = false;
}

/** Starts a task: its answer, or a promise of it when the task waits. */
function step(t: ThreadTask): ResultEnvelope | NotStarted | Promise<ResultEnvelope> {
  const env = t.env;
  Atomics.store(progress, 0, seq++);
  started = clock.now();
  if (cancelled.size > 0 && cancelled.delete(env.taskId)) return cancelledBefore(env);
  if (t.after !== undefined && !follow(env, t.after)) return { kind: 'notStarted', taskId: env.taskId };
  try {
    return runTask(env, context);
  } catch (err) {
    return malformed(env, err);
  }
}

function cancelledBefore(env: TaskEnvelope): ResultEnvelope {
  return errorResult(env.taskId, new TaskCancelledError(env.fn, env.taskId, 'before it started'), 'user');
}

/** Only a malformed envelope gets here; report it as the task's failure. */
function malformed(env: TaskEnvelope, err: unknown): ResultEnvelope {
  return errorResult(typeof env?.taskId === 'string' ? env.taskId : '?', err, 'infrastructure');
}

/** A task that waited: its answer goes out as any other, and the queue goes on. */
async function resume(t: ThreadTask, p: Promise<ResultEnvelope>): Promise<void> {
  let res: ResultEnvelope;
  try {
    res = await p;
  } catch (err) {
    res = malformed(t.env, err);
  }
  finish(t, res);
  runQueue();
}

/** A task's answer joins the results to send; they go out at once when the queue is empty or time is up. */
function finish(t: ThreadTask, res: ResultEnvelope | NotStarted): void {
  current = undefined;
  if (t.after !== undefined) unwant(t);
  if (wanted.size > 0) keepAnswer(t.env.taskId, res);
  pending.push(res);
  Atomics.store(progress, 1, seq);
  const now = clock.now();
  if (queue.length === 0 || now - started >= FLUSH_MS / 2 || now - lastFlush >= FLUSH_MS) {
    flushResults();
    lastFlush = now;
  }
}

/** Keeps a task's answer while queued followers take it as an argument. */
function keepAnswer(taskId: string, res: ResultEnvelope | NotStarted): void {
  if (res.kind !== 'notStarted' && wanted.has(taskId)) answers.set(taskId, res);
}

port.on('message', (m: ToWorker) => {
  switch (m.kind) {
    case 'tasks':
      for (const t of unpackTasks(m.batch)) {
        want(t);
        queue.push(t);
      }
      if (!running) runQueue();
      break;
    case 'cancel':
      if (current?.taskId === m.taskId) current.abort(new TaskCancelledError(current.functionName, m.taskId, 'while it ran'));
      else if (queue.some((t) => t.env.taskId === m.taskId)) cancelled.add(m.taskId);
      break;
    case 'got':
    case 'stored':
      onReply(m);
      break;
    case 'drop': {
      // The pool took back the tasks queued behind a task that blocked; they have not started (it has not resumed).
      const ids = new Set(m.taskIds);
      for (let i = queue.length - 1; i >= 0; i--) {
        if (ids.has(queue[i]!.env.taskId)) unwant(queue.splice(i, 1)[0]!);
      }
      break;
    }
    case 'awaited': {
      const w = awaiting.get(m.id);
      awaiting.delete(m.id);
      if (m.reply) w?.resolve(m.reply);
      else w?.reject(reviveError(m.error ?? { name: 'ProtocolError', message: 'an empty answer to a wait' }));
      break;
    }
  }
});

// Load the module of the task that started this worker first: one that no worker can load fails
// the start (the pool reports its ConfigError once: a rejection here is the thread's error, as an
// uncaught one); any other failure is the task's to report. In a function, not a top-level await:
// a task that ends its thread with process.exit() while this module's evaluation were still
// pending (its first message is taken in during the load) would abort the whole process in
// V8's async module evaluation (nodejs/node#43182; seen on Node 20.20).
const preload = (workerData as { preload?: string }).preload;
void (async () => {
  if (preload) {
    try {
      await loadModule(preload);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
    }
  }
  send({ kind: 'ready' });
})();
