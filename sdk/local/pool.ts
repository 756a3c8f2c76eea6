/**
 * The embedded runtime's invoker: a pool of worker threads with Lambda-like semantics.
 *
 * - one task at a time per worker; module state survives between tasks (warm starts);
 * - the pool grows on demand up to `maxWorkers`, starting at most as many workers at once as
 *   there are cores (starting a thread costs tens of ms of CPU; starting them all at once
 *   makes the first one ready later); past a worker per core, only for a task that waited
 *   SPAWN_AFTER_MS, counted from when a worker was ready to take it, while the workers were not
 *   cycling through tasks (no worker that could have answered did, none has finished a task
 *   whose result waits unread or is late to start the task it was handed), once a worker per
 *   core is ready, and never for short tasks while a worker runs batches of
 *   them; the `minWorkers` started at init, before
 *   any task, are paced the same way; an idle worker is stopped after `idleTimeoutMs`;
 * - a task past its timeout is stopped with its worker and reported as a TaskTimeoutError;
 * - a worker that dies (process.exit, uncaught error, out of memory) is replaced and its
 *   task reported as a WorkerCrashedError;
 * - tasks of a function known to be short (its runs so far averaged under `SHORT_TASK_MS`, see
 *   policy.ts) are
 *   handed to a worker several at a time when many are queued: the worker still runs them one
 *   after another, and reports results together at most ~2 ms apart (at once after a slower
 *   task), so one message carries many tasks or results, which is what bounds throughput for
 *   tiny tasks; a busy worker gets its next batch before it runs dry, so it never waits for
 *   the driver. The worker marks which of its tasks is running in shared memory; when it
 *   dies or times out, that task fails, and the batch's other tasks whose results had not
 *   arrived go back to the front of the queue (a short task may then run twice: results lost
 *   with a dead worker are recomputed, never invented).
 * - a worker's results are handed to the orchestrator synchronously and all together
 *   (`invokeThen`), and the tasks they make ready are scheduled once after them;
 * - an actor's calls (invoke options with an `affinity`) go to one worker dedicated to it,
 *   which holds its instance and runs nothing else until it is released or dies.
 *
 * Hand-written rather than built on tinypool or piscina: those pools cannot grow by the
 * start-up policy above, answer a worker's object-store requests while a task runs, or tell
 * a crash from a timeout in the way a task failure must report it.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { NOT_CHAINED, type InvokeCallback, type InvokeOptions, type Invoker, type ObjectStore, type TaskHost } from '../backend.js';
import { ConfigError, TaskCancelledError, TaskError, TaskTimeoutError, UsageError, WorkerCrashedError, shutDownBeforeRun, toRemoteErrorInfo } from '../errors.js';
import type { ResultEnvelope, TaskEnvelope } from '../protocol.js';
import { setLongTimeout, type LongTimer } from '../timers.js';
import { optionTable, type ResolvedLocalOptions } from '../options.js';
import type { FromWorker, ToWorker } from './messages.js';
import { MAX_BATCH, RunTimes, SPAWN_AFTER_MS, batchLimit } from './policy.js';
import { answerStoreRequest } from './store-channel.js';
import { packTasks, unpackResults } from './wire.js';

interface Job {
  env: TaskEnvelope;
  timeoutMs: number;
  /** When the job entered the queue (the pool's clock). */
  queuedAt: number;
  resolve: (r: ResultEnvelope) => void;
  /** Always called as `job.reject(err)`. */
  reject: (this: Job, e: Error) => void;
  /**
   * A follower (chaining): the tasks whose results are its missing arguments, which must go
   * before it in its worker's batch. Set (undefined or not) when the job is made: every job has
   * one shape.
   */
  after: readonly string[] | undefined;
}

/** A worker that has not started the task it was handed this long after is behind (waits for a core), not held up by a long task (see `workerBehind`). */
const BEHIND_MS = 1;

/** Most tasks in one batch with the followers that join it past its limit (see `takeBatch`). */
const MAX_CHAINED_BATCH = 4 * MAX_BATCH;

/**
 * `reject` of an invokeThen job: its callback (`resolve`) is told on a later microtask. Shared
 * by every such job rather than a closure per task (the dispatch path runs once per task).
 */
function rejectLater(this: Job, err: Error): void {
  failLater(this.resolve as InvokeCallback, err);
}

/** Tells a callback of a failure on a later microtask. */
function failLater(done: InvokeCallback, err: Error): void {
  queueMicrotask(() => done(undefined, err));
}

interface Slot {
  worker: Worker;
  /** The worker as results name it (timelines: one track per thread). */
  info: { id: string };
  ready: boolean;
  /** When it became ready (the pool's clock). */
  readyAt: number;
  /** Tasks handed to this worker whose results have not arrived, in the order it runs them. */
  jobs: Job[];
  /** Running a batch of short tasks (counted in shortRunning). */
  short: boolean;
  /** Results received from this worker since it started: the sequence number of jobs[0]. */
  completed: number;
  /** The worker writes here the sequence number of the task it is running ([0]; -1 before its first) and how many it has finished ([1]). */
  progress: Int32Array;
  timer?: LongTimer;
  /** Calls the pool's onTimeout for this worker (made once, not per timer). */
  onTimeout: () => void;
  /** When jobs[0] became the first of its tasks (the pool's clock). */
  firstSince: number;
  idleTimer?: NodeJS.Timeout;
  /** Why the pool is stopping this worker, so its exit is not reported as a crash. */
  stopping?: 'timeout' | 'idle' | 'close' | 'cancel' | 'release';
  error?: Error;
  /** get/wait calls of its running task that wait for the driver: while any does, the worker does not count against maxWorkers. */
  blocked: number;
  /** The affinity (an actor's id) this worker is dedicated to: it runs that actor's calls and nothing else. */
  actor?: string;
  /** Calls for the dedicated worker not handed to it yet. */
  waiting?: Job[];
}

export interface PoolStats {
  started: number;
  alive: number;
  busy: number;
  queued: number;
  /** Followers run in their producers' batch (chaining): each saved a trip through the driver. */
  chained: number;
}

export class WorkerPool implements Invoker {
  private readonly slots = new Set<Slot>();
  private readonly idle: Slot[] = [];
  private readonly queue: Job[] = [];
  private queueHead = 0;
  private starting = 0;
  private startedTotal = 0;
  private chainedTotal = 0;
  private closed = false;
  private readonly spawnConcurrency = Math.max(1, availableParallelism());
  private readonly runTimes = new RunTimes();
  /**
   * Workers running short tasks. Kept to one per core: more threads than cores only take
   * turns waking each other, while a few busy workers with long batches keep the cores full.
   */
  private shortRunning = 0;
  private growTimer?: NodeJS.Timeout;
  /**
   * Threads still to start ahead of need (local.minWorkers), paced like the others: all at once,
   * they share the cores, and the first is ready only when all are.
   */
  private prestart = 0;
  /** A growth decision waiting for the event loop to take in the workers' messages first; set while it is made. */
  private growCheck?: NodeJS.Immediate;
  private afterIo = false;
  /** When a worker last became ready while no other was (the pool's clock; see `grow`). */
  private readySince = Number.NEGATIVE_INFINITY;
  /** Workers whose running task is blocked in get/wait (Ray releases a blocked task's CPU the same way). */
  private blockedSlots = 0;
  private host?: TaskHost;
  /**
   * Results received in the current and the previous SPAWN_AFTER_MS window: workers that answer
   * about once each per window are cycling through short tasks, and the queue drains without
   * new threads. (A single answer now and then, as long tasks end, says nothing of the rest.)
   */
  private answers = { since: 0, now: 0, before: 0 };
  /** Set while a worker's results are handed over: the tasks they make ready are queued, then scheduled together. */
  private delivering = false;
  /**
   * The tasks handed over while results are delivered (the dependents they made ready, with
   * their followers): they go to the front of the queue, ahead of tasks that waited for nothing
   * (see Runtime's `readyFirst`), in the order they came.
   */
  private front: Job[] = [];
  /** A schedule() is queued for the end of the caller's synchronous work (see `enter`). */
  private scheduling = false;
  /** Store requests of workers being answered; close() waits for them, so none lands later. */
  private readonly storeRequests = new Set<Promise<void>>();
  /** Workers dedicated to an actor, by affinity; and actors waiting for a worker to free up at maxWorkers. */
  private readonly dedicated = new Map<string, Slot>();
  private readonly actorWaiting: Array<{ key: string; job: Job }> = [];

  /** The clock of the growth policy: performance.now, or a test's own (`options.now`), so that what it decides does not hang on the machine's load. */
  private readonly now: () => number;

  constructor(
    private readonly options: ResolvedLocalOptions & { maxTaskDepth?: number; now?: () => number },
    /** The driver's store that workers read and write (the MemoryStore). */
    private readonly store: ObjectStore,
    private readonly entry: URL = new URL('./worker-thread.js', import.meta.url),
  ) {
    // A bound builtin: no function of the pool's own to compile for a clock read once per task.
    this.now = options.now ?? performance.now.bind(performance);
    this.prestart = options.minWorkers;
    this.grow();
  }

  invoke(env: TaskEnvelope, options: InvokeOptions): Promise<ResultEnvelope> {
    if (this.closed) return Promise.reject(shutDownBeforeRun(env));
    return new Promise((resolve, reject) => this.enter({ env, timeoutMs: options.timeoutMs, queuedAt: this.now(), resolve, reject, after: options.after }, options));
  }

  /** `invoke` with a callback: results are handed over synchronously (see `Invoker.invokeThen`), failures on a later microtask. */
  invokeThen(env: TaskEnvelope, options: InvokeOptions, done: InvokeCallback): void {
    if (this.closed) failLater(done, shutDownBeforeRun(env));
    else this.enter({ env, timeoutMs: options.timeoutMs, queuedAt: this.now(), resolve: done, reject: rejectLater, after: options.after }, options);
  }

  /**
   * The queued schedule() of `enter`: made once, since an arrow function made in `enter` would
   * make every call of it (once per task) allocate a context for its `this`.
   */
  private readonly scheduleQueued = (): void => {
    this.scheduling = false;
    this.schedule();
  };

  private enter(job: Job, options: InvokeOptions): void {
    if (options.affinity !== undefined) this.invokeDedicated(options.affinity, job);
    else if (this.delivering) this.front.push(job);
    else {
      this.queue.push(job);
      // A short task is scheduled once the caller's synchronous work is done: the short tasks it
      // hands over together (a DAG submitted in one go, and the followers of its tasks) are
      // batched together. Any other task is scheduled at once.
      if (!this.isShort(job)) this.schedule();
      else if (!this.scheduling) {
        this.scheduling = true;
        queueMicrotask(this.scheduleQueued);
      }
    }
  }

  /**
   * Tasks of `fn` may go to a worker with the tasks they depend on (chaining, see
   * `InvokeOptions.after`): its tasks are short, so they are batched, and a worker runs its
   * batch in order, filling a follower's arguments from the results of its producers, which
   * go before it in the same batch. A follower that cannot go so is handed back NOT_CHAINED.
   */
  chains(fn: string): boolean {
    return this.runTimes.isShort(fn);
  }

  /**
   * Cancels a task given to the pool. Queued here: it never starts. Handed to a worker but not
   * started: the worker skips it. Running: its signal is aborted, and with `force` its worker
   * thread is terminated (the pool starts another). Unknown (finished) tasks are ignored.
   */
  cancel(taskId: string, force: boolean): void {
    this.putFront();
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const job = this.queue[i]!;
      if (job.env.taskId !== taskId) continue;
      this.queue.splice(i, 1);
      job.reject(new TaskCancelledError(job.env.fn, taskId, 'before it started'));
      return;
    }
    for (const slot of this.slots) {
      const i = slot.jobs.findIndex((j) => j.env.taskId === taskId);
      if (i < 0) continue;
      const running = Atomics.load(slot.progress, 0) - slot.completed;
      if (force && i === running) {
        const { job, again } = this.takeFailed(slot);
        slot.stopping = 'cancel';
        void slot.worker.terminate();
        this.requeue(job, again);
        job?.reject(new TaskCancelledError(job.env.fn, taskId, 'and its worker stopped'));
      } else {
        slot.worker.postMessage({ kind: 'cancel', taskId } satisfies ToWorker);
      }
      return;
    }
  }

  /**
   * Stops the worker dedicated to this affinity (an actor killed); a call it was running fails
   * as a crash, which the actor reports as its death.
   */
  releaseAffinity(affinity: string): void {
    for (let i = this.actorWaiting.length - 1; i >= 0; i--) {
      const w = this.actorWaiting[i]!;
      if (w.key === affinity) {
        this.actorWaiting.splice(i, 1);
        w.job.reject(new WorkerCrashedError(w.job.env.fn, w.job.env.taskId, 'its actor was released'));
      }
    }
    const slot = this.dedicated.get(affinity);
    if (!slot) return;
    this.dedicated.delete(affinity);
    slot.stopping = 'release';
    void slot.worker.terminate();
  }

  serve(host: TaskHost): void {
    this.host = host;
  }

  stats(): PoolStats {
    let busy = 0;
    for (const s of this.slots) if (s.jobs.length) busy++;
    return { started: this.startedTotal, alive: this.slots.size, busy, queued: this.queue.length - this.queueHead + this.front.length, chained: this.chainedTotal };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.growTimer) clearTimeout(this.growTimer);
    if (this.growCheck) clearImmediate(this.growCheck);
    const exits: Promise<unknown>[] = [];
    for (const s of this.slots) {
      s.stopping = 'close';
      s.timer?.clear();
      if (s.idleTimer) clearTimeout(s.idleTimer);
      exits.push(s.worker.terminate());
    }
    this.slots.clear();
    this.idle.length = 0;
    this.dedicated.clear();
    for (const w of this.actorWaiting.splice(0)) w.job.reject(shutDownBeforeRun(w.job.env));
    this.putFront();
    while (this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead++]!;
      job.reject(shutDownBeforeRun(job.env));
    }
    await Promise.all([...exits, ...this.storeRequests]);
  }

  // --- internals ---------------------------------------------------------------------------

  private queued(): number {
    return this.queue.length - this.queueHead;
  }

  private countAnswers(n: number): void {
    const a = this.answers;
    const now = this.now();
    if (now - a.since >= SPAWN_AFTER_MS) {
      // A new window; the last one counts only if it just ended.
      a.before = now - a.since < 2 * SPAWN_AFTER_MS ? a.now : 0;
      a.since = now;
      a.now = 0;
    }
    a.now += n;
  }

  /** Hands queued tasks to idle workers, then starts workers for what is left. */
  private schedule(): void {
    if (this.delivering) return;
    while (this.queueHead < this.queue.length && this.idle.length > 0) {
      const short = this.isShort(this.queue[this.queueHead]!);
      if (short && this.shortRunning >= this.spawnConcurrency) break;
      const batch = this.takeBatch(short);
      // Only followers handed back: look at the queue again.
      if (batch.length === 0) continue;
      const slot = this.idle.pop()!;
      slot.short = short;
      if (short) this.shortRunning++;
      this.assign(slot, batch);
    }
    this.grow();
  }

  private grow(): void {
    if (this.closed) return;
    let demand = 0;
    if (this.queueHead < this.queue.length) {
      const head = this.queue[this.queueHead]!;
      // Short tasks take a worker per core at most; past that, none while any worker runs batches
      // of them: it drains the queue (a batch ends within milliseconds and the worker takes the
      // next), and another thread would only take turns with it for the cores. (Its answers may
      // wait unread while the driver is busy, so they are no sign of it here.)
      if (this.isShort(head)) demand = this.shortRunning > 0 && this.slots.size >= this.spawnConcurrency ? 0 : this.spawnConcurrency - this.shortRunning - this.idle.length;
      else demand = this.queued();
      // Past a worker per core, a new thread is started only for a task that waited SPAWN_AFTER_MS
      // while the workers were not cycling through tasks (about one answer each per window):
      // workers that keep answering drain the queue sooner than a thread starts (tens of ms of
      // CPU), as in a DAG of short tasks whose function is new.
      // Decided after the event loop has taken in what the workers sent (setImmediate runs after
      // I/O): while the driver is busy (submitting a large DAG), answers wait unread in the port.
      // Not before a worker per core is ready: a thread started meanwhile shares the cores with
      // the ones still starting (a worker that becomes ready looks at the queue again).
      if (demand > 0 && this.slots.size >= this.spawnConcurrency && this.slots.size - this.starting < this.spawnConcurrency) demand = 0;
      if (demand > 0 && this.slots.size >= this.spawnConcurrency) {
        const now = this.now();
        const a = this.answers;
        // Workers running batches of short tasks on every core count as answering: each batch ends
        // soon, and then a worker takes the head (a task of a new function made ready among them).
        const answering =
          this.shortRunning >= this.spawnConcurrency ||
          this.workerBehind(now) ||
          (now - a.since < 2 * SPAWN_AFTER_MS && a.now + (now - a.since < SPAWN_AFTER_MS ? a.before : 0) >= this.settledWorkers(now));
        // The wait counts from when a worker could take the task: while the first threads start,
        // nothing answers, whether tasks are long or short.
        const wait = answering ? SPAWN_AFTER_MS : SPAWN_AFTER_MS - (now - Math.max(head.queuedAt, this.readySince));
        if (wait > 0 || !this.afterIo) {
          demand = 0;
          if (wait > 0)
            this.growTimer ??= setTimeout(() => {
              this.growTimer = undefined;
              this.grow();
            }, wait);
          else
            this.growCheck ??= setImmediate(() => {
              this.growCheck = undefined;
              this.afterIo = true;
              this.grow();
              this.afterIo = false;
            });
        }
      }
    }
    while (!this.closed && this.starting < this.spawnConcurrency && this.slots.size - this.blockedSlots < this.options.maxWorkers && (demand > this.starting || this.prestart > 0)) {
      this.spawn();
    }
  }

  /**
   * An actor's call goes to the worker dedicated to it; its first call dedicates an idle worker
   * or a new one (counted in maxWorkers), or waits for an ordinary worker to free up.
   * The driver sends an actor one call at a time.
   */
  private invokeDedicated(key: string, job: Job): void {
    if (job.after) {
      // An actor's call never follows other tasks (the orchestrator does not chain tasks with hooks).
      job.reject(NOT_CHAINED);
      return;
    }
    let slot = this.dedicated.get(key);
    if (!slot) {
      slot = this.idle.pop() ?? (this.slots.size < this.options.maxWorkers ? this.spawn() : undefined);
      if (!slot) {
        if (this.dedicated.size >= this.options.maxWorkers) {
          // Every thread holds an actor: none will free up by itself.
          job.reject(
            new TaskError(
              `Actor call ${job.env.fn} (${job.env.taskId}) has no worker: all ${this.options.maxWorkers} worker threads (local.maxWorkers) hold actors; kill() actors you no longer need or raise local.maxWorkers`,
              {
                functionName: job.env.fn,
                taskId: job.env.taskId,
                fault: 'infrastructure',
              },
            ),
          );
          return;
        }
        this.actorWaiting.push({ key, job });
        return;
      }
      this.dedicate(slot, key);
    }
    slot.waiting!.push(job);
    if (slot.ready) this.feedDedicated(slot);
  }

  private dedicate(slot: Slot, key: string): void {
    slot.actor = key;
    slot.waiting = [];
    this.dedicated.set(key, slot);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
  }

  /** A dedicated worker runs its actor's next call, or waits for one without keeping the process alive. */
  private feedDedicated(slot: Slot): void {
    if (slot.jobs.length > 0) return;
    const next = slot.waiting!.shift();
    if (next) this.assign(slot, [next]);
    else slot.worker.unref();
  }

  private spawn(): Slot {
    const progress = new Int32Array(new SharedArrayBuffer(8));
    // No task started yet (the worker writes each one's sequence number from 0 on).
    progress[0] = -1;
    // No execArgv option: by default a worker gets the driver's (loader flags such as --import
    // tsx or --experimental-strip-types; Node leaves out the per-process ones, which an explicit
    // list would have to), so it loads task modules the way the driver did. `preload`: the
    // module of the task that made the pool grow, loaded before the worker reports ready, so a
    // module no worker can load fails the queue once with a ConfigError, not each task.
    const preload = this.queue[this.queueHead]?.env.module;
    const maxTaskDepth = this.options.maxTaskDepth ?? optionTable.init.maxTaskDepth.default;
    const worker = new Worker(this.entry, { workerData: { progress, preload, maxTaskDepth } });
    const slot: Slot = {
      worker,
      info: { id: `thread-${worker.threadId}` },
      ready: false,
      readyAt: 0,
      firstSince: 0,
      jobs: [],
      short: false,
      completed: 0,
      progress,
      blocked: 0,
      onTimeout: () => this.onTimeout(slot),
    };
    this.slots.add(slot);
    this.starting++;
    this.startedTotal++;
    if (this.prestart > 0) this.prestart--;
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (err) => {
      slot.error = err;
    });
    worker.on('exit', (code) => this.onExit(slot, code));
    return slot;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.kind) {
      case 'ready':
        if (!this.anyReady()) this.readySince = this.now();
        slot.ready = true;
        slot.readyAt = this.now();
        this.starting--;
        this.release(slot);
        return;
      case 'results': {
        // After a timeout the pool has given up on this worker; late results are dropped.
        if (slot.stopping) return;
        slot.timer?.clear();
        slot.timer = undefined;
        const results = unpackResults(m.batch, slot.info);
        this.countAnswers(results.length);
        // Every result first, then scheduling once: the tasks the results make ready (handed to
        // invokeThen synchronously by the orchestrator) go out together, in batches when short.
        this.delivering = true;
        for (const res of results) {
          const job = slot.jobs[0];
          if (!job || res.taskId !== job.env.taskId) continue;
          slot.jobs.shift();
          slot.completed++;
          if (res.kind === 'notStarted') {
            // A follower whose producer did not give a value to pass on: not a run.
            job.reject(NOT_CHAINED);
            continue;
          }
          if (job.after) this.chainedTotal++;
          this.runTimes.record(job.env.fn, res.timing.runMs + res.timing.fetchMs + res.timing.storeMs);
          res.worker = slot.info;
          try {
            job.resolve(res);
          } catch (err) {
            // The orchestrator's own fault: reported as an uncaught exception, not lost in the pool's bookkeeping.
            queueMicrotask(() => {
              throw err;
            });
          }
        }
        this.delivering = false;
        this.putFront();
        // A callback may have stopped this worker (a forced cancel); otherwise it is free or busy.
        if (!slot.stopping) {
          if (slot.jobs.length === 0) this.release(slot);
          else {
            this.startTimer(slot);
            // Keep a busy short-task worker fed: send its next batch before it runs dry.
            if (slot.short && slot.jobs.length < MAX_BATCH / 2 && this.queueHead < this.queue.length && this.isShort(this.queue[this.queueHead]!)) {
              const batch = this.takeBatch(true);
              if (batch.length > 0) this.assign(slot, batch);
            }
          }
        }
        // What the results made ready (and what a stopped worker gave back) was queued meanwhile:
        // an actor's worker, or a busy one, does not take it.
        this.schedule();
        return;
      }
      case 'get':
      case 'put':
        this.onStoreRequest(slot, m);
        return;
      case 'submit':
        if (this.runs(slot, m.parent)) this.host?.submit(m.parent, m.task);
        return;
      case 'object':
        if (this.runs(slot, m.parent)) this.host?.put(m.parent, m.id, m.bytes);
        return;
      case 'await':
        this.onAwait(slot, m);
        return;
      case 'cancel':
        if (this.runs(slot, m.parent)) this.host?.cancel(m.parent, m.id, m.force, m.recursive);
        return;
    }
  }

  /** A worker's store request. (Out of `onMessage`: its closure over the slot would make every message allocate a context.) */
  private onStoreRequest(slot: Slot, m: Extract<FromWorker, { kind: 'get' | 'put' }>): void {
    if (this.closed) return;
    const answer = answerStoreRequest(this.store, m).then((reply) => {
      this.storeRequests.delete(answer);
      if (!slot.stopping) slot.worker.postMessage(reply);
    });
    this.storeRequests.add(answer);
  }

  /**
   * The workers expected to answer about once per SPAWN_AFTER_MS window when they cycle through
   * tasks: those ready for a window at least and not blocked in get/wait (one that just started
   * is still running its first, cold task); at least one.
   */
  private settledWorkers(now: number): number {
    let n = 0;
    for (const s of this.slots) if (s.ready && !s.stopping && s.blocked === 0 && now - s.readyAt >= SPAWN_AFTER_MS) n++;
    return Math.max(1, n);
  }

  /**
   * Whether a worker is not held up by a long task but behind: it has finished a task whose
   * result the driver has not taken in yet (its answer waits in the port while the driver is
   * busy, as when it submits or chains a large DAG), or has not started the task it was handed
   * a while ago (BEHIND_MS: it waits for a core, or reads its messages late). Either way it takes
   * the next task soon, and a new thread would only compete with it for the cores. Read from
   * the worker's shared counters, which do not wait for the driver.
   */
  private workerBehind(now: number): boolean {
    for (const s of this.slots) {
      if (s.jobs.length === 0 || s.stopping || s.blocked > 0) continue;
      if (Atomics.load(s.progress, 1) > s.completed || (Atomics.load(s.progress, 0) < s.completed && now - s.firstSince >= BEHIND_MS)) return true;
    }
    return false;
  }

  private anyReady(): boolean {
    for (const s of this.slots) if (s.ready && !s.stopping) return true;
    return false;
  }

  /** Whether `taskId` is one of the tasks handed to this worker (messages name the task they come from). */
  private runs(slot: Slot, taskId: string): boolean {
    return slot.jobs.some((j) => j.env.taskId === taskId);
  }

  /** A running task waits for refs: its worker stops counting against maxWorkers until the answer, so its children can run. */
  private onAwait(slot: Slot, m: Extract<FromWorker, { kind: 'await' }>): void {
    const host = this.host;
    if (!host || !this.runs(slot, m.parent)) {
      const err = new UsageError("this pool has no orchestrator to answer a task's get/wait (it was used without a Runtime)");
      slot.worker.postMessage({ kind: 'awaited', id: m.id, error: toRemoteErrorInfo(err) } satisfies ToWorker);
      return;
    }
    if (slot.blocked++ === 0) {
      this.blockedSlots++;
      // A blocked worker runs no short tasks: it leaves their share of the cores to others.
      this.endShort(slot);
      // Tasks batched behind the blocked one (short tasks) could be the ones it waits for: run them elsewhere.
      const at = slot.jobs.findIndex((j) => j.env.taskId === m.parent);
      const behind = slot.jobs.splice(at + 1);
      if (behind.length > 0) {
        slot.worker.postMessage({ kind: 'drop', taskIds: behind.map((j) => j.env.taskId) } satisfies ToWorker);
        this.requeue(undefined, behind);
      }
      this.schedule();
    }
    const answer = (msg: ToWorker) => {
      // A worker that was stopped meanwhile (timeout, crash, close) is no longer counted, nor answered.
      if (!this.slots.has(slot)) return;
      if (--slot.blocked === 0) this.blockedSlots--;
      slot.worker.postMessage(msg);
    };
    host.await(m.parent, m.req).then(
      (reply) => answer({ kind: 'awaited', id: m.id, reply }),
      (err: unknown) => answer({ kind: 'awaited', id: m.id, error: toRemoteErrorInfo(err) }),
    );
  }

  /** Sends tasks to a worker, which runs them after any it already has, one at a time. */
  private assign(slot: Slot, jobs: Job[]): void {
    if (slot.idleTimer) {
      clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
    }
    const wasIdle = slot.jobs.length === 0;
    slot.jobs.push(...jobs);
    slot.worker.ref();
    if (wasIdle) this.startTimer(slot);
    // A job is a ThreadTask (its envelope, and for a follower its producers' ids).
    const batch = packTasks(jobs);
    slot.worker.postMessage({ kind: 'tasks', batch } satisfies ToWorker, batch.bytes ? [batch.bytes] : undefined);
  }

  /** The timer always belongs to the worker's running task, the first of its jobs. */
  private startTimer(slot: Slot): void {
    slot.firstSince = this.now();
    slot.timer = setLongTimeout(slot.onTimeout, slot.jobs[0]!.timeoutMs);
  }

  private isShort(job: Job): boolean {
    return this.runTimes.isShort(job.env.fn);
  }

  /**
   * Takes the next task, and more behind it while they are short and the queue is long. A
   * follower goes only behind all its producers in the same batch; one that cannot is handed
   * back NOT_CHAINED (the orchestrator dispatches it once its arguments are ready).
   */
  private takeBatch(short: boolean): Job[] {
    const limit = short ? batchLimit(this.queued() - 1, this.spawnConcurrency) : 1;
    const batch: Job[] = [];
    /** Ids of the batch's tasks, made when a follower first asks. */
    let ids: Set<string> | undefined;
    /** Tasks of the batch that follow none of its others: the limit counts these. */
    let independent = 0;
    while (this.queueHead < this.queue.length && batch.length < MAX_CHAINED_BATCH) {
      const job = this.queue[this.queueHead]!;
      if (batch.length > 0 && !this.isShort(job)) break;
      // Followers of the batch's tasks join it past the limit: they could not start sooner elsewhere.
      if (!job.after && independent >= limit) break;
      this.queue[this.queueHead++] = undefined as never;
      if (job.after) {
        ids ??= new Set(batch.map((j) => j.env.taskId));
        if (!job.after.every((id) => ids!.has(id))) {
          job.reject(NOT_CHAINED);
          continue;
        }
      } else independent++;
      ids?.add(job.env.taskId);
      batch.push(job);
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    return batch;
  }

  /** The tasks handed over while results were delivered go ahead of the queue (see `front`). */
  private putFront(): void {
    const jobs = this.front;
    if (jobs.length === 0) return;
    this.front = [];
    this.toHead(jobs);
  }

  /**
   * Tasks of a stopped worker that had not started go back to the front of the queue, except the
   * followers of its failed task (and of those followers): they go back NOT_CHAINED at once. A
   * follower can only run behind its producer in one batch, and the failed producer will go again
   * as a new task (a retry), or not at all. Handed back now, they wait at the orchestrator, which
   * can make them followers of the retry when it dispatches it; left in the queue until a worker
   * frees up (after the retry's timer, when the crashed worker was the only one), they would be
   * handed back only then, and run one round trip after the retry instead of in its batch.
   * Called before the failed task is rejected, so the orchestrator has them back first.
   */
  private requeue(failed: Job | undefined, jobs: Job[]): void {
    if (jobs.length === 0) return;
    const gone = new Set(failed ? [failed.env.taskId] : []);
    const again: Job[] = [];
    for (const job of jobs) {
      if (job.after?.some((id) => gone.has(id))) {
        gone.add(job.env.taskId);
        job.reject(NOT_CHAINED);
      } else again.push(job);
    }
    if (again.length === 0) return;
    this.toHead(again);
    this.schedule();
  }

  /** Puts jobs at the queue's head, in their order. */
  private toHead(jobs: Job[]): void {
    // The queue's taken slots before its head have room for them, most often.
    if (this.queueHead >= jobs.length) {
      this.queueHead -= jobs.length;
      for (let i = 0; i < jobs.length; i++) this.queue[this.queueHead + i] = jobs[i]!;
    } else this.queue.splice(this.queueHead, 0, ...jobs);
  }

  /** A free worker takes the next queued task, or goes idle (and stops keeping the process alive). */
  private release(slot: Slot): void {
    this.endShort(slot);
    if (this.closed || slot.stopping) return;
    if (slot.actor !== undefined) {
      this.feedDedicated(slot);
      return;
    }
    const waiting = this.actorWaiting.shift();
    if (waiting) {
      this.dedicate(slot, waiting.key);
      slot.waiting!.push(waiting.job);
      this.feedDedicated(slot);
      return;
    }
    this.idle.push(slot);
    this.schedule();
    if (slot.jobs.length > 0 || slot.idleTimer) return;
    slot.worker.unref();
    slot.idleTimer = setTimeout(() => {
      // Workers already being stopped still count in `slots` until they exit.
      let staying = 0;
      for (const s of this.slots) if (!s.stopping) staying++;
      if (staying <= this.options.minWorkers) return;
      const i = this.idle.indexOf(slot);
      if (i >= 0) this.idle.splice(i, 1);
      slot.stopping = 'idle';
      void slot.worker.terminate();
    }, this.options.idleTimeoutMs);
    slot.idleTimer.unref();
  }

  private endShort(slot: Slot): void {
    if (slot.short) {
      slot.short = false;
      this.shortRunning--;
    }
  }

  /** Splits a stopped worker's jobs into the one it was running and the ones to run again. */
  private takeFailed(slot: Slot): { job?: Job; again: Job[] } {
    this.endShort(slot);
    const running = Atomics.load(slot.progress, 0) - slot.completed;
    const jobs = slot.jobs;
    slot.jobs = [];
    slot.timer?.clear();
    slot.timer = undefined;
    const i = running >= 0 && running < jobs.length ? running : 0;
    return { job: jobs[i], again: [...jobs.slice(0, i), ...jobs.slice(i + 1)] };
  }

  private onTimeout(slot: Slot): void {
    const { job, again } = this.takeFailed(slot);
    if (!job) return;
    slot.stopping = 'timeout';
    // An actor's instance goes with its worker: its next call (a restart) needs another.
    if (slot.actor !== undefined && this.dedicated.get(slot.actor) === slot) this.dedicated.delete(slot.actor);
    void slot.worker.terminate();
    this.requeue(job, again);
    job.reject(new TaskTimeoutError(job.env.fn, job.env.taskId, job.timeoutMs));
  }

  private onExit(slot: Slot, code: number): void {
    this.slots.delete(slot);
    if (slot.blocked > 0) {
      this.blockedSlots--;
      slot.blocked = 0;
    }
    if (slot.actor !== undefined) {
      // The actor's instance died with its worker; its next call (a restart) gets a new one.
      if (this.dedicated.get(slot.actor) === slot) this.dedicated.delete(slot.actor);
      for (const j of slot.waiting!.splice(0)) j.reject(new WorkerCrashedError(j.env.fn, j.env.taskId, `the worker holding its actor exited with code ${code}`));
    }
    const i = this.idle.indexOf(slot);
    if (i >= 0) this.idle.splice(i, 1);
    if (!slot.ready) this.starting--;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    const { job, again } = this.takeFailed(slot);
    if (job) {
      this.requeue(job, again);
      const e = slot.error as (Error & { code?: string }) | undefined;
      const detail = e ? (e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'out of memory' : `uncaught ${e.name}: ${e.message}`) : `the worker exited with code ${code} while the task ran`;
      job.reject(new WorkerCrashedError(job.env.fn, job.env.taskId, detail, { cause: e }));
    } else if (!slot.ready && slot.error && !slot.stopping) {
      // A worker that cannot even start would fail every task: fail the queue instead of looping.
      const cause = slot.error;
      const config = (cause as { code?: string }).code === 'CONFIG' ? new ConfigError(cause.message, { cause: cause.cause ?? cause }) : undefined;
      while (this.queueHead < this.queue.length) {
        const j = this.queue[this.queueHead++]!;
        j.reject(config ?? new WorkerCrashedError(j.env.fn, j.env.taskId, `a worker thread failed to start: ${cause.message}`, { cause }));
      }
      return;
    }
    this.schedule();
  }
}
