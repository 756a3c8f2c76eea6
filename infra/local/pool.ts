/**
 * The embedded runtime's invoker: a pool of worker threads with Lambda-like semantics.
 *
 * - one task at a time per worker; module state survives between tasks (warm starts);
 * - the pool grows on demand up to `maxWorkers`, starting at most as many workers at once as
 *   there are cores (starting a thread costs tens of ms of CPU; starting them all at once
 *   makes the first one ready later), and an idle worker is stopped after `idleTimeoutMs`;
 * - a task past its timeout is stopped with its worker and reported as a TaskTimeoutError;
 * - a worker that dies (process.exit, uncaught error, out of memory) is replaced and its
 *   task reported as a WorkerCrashedError.
 *
 * Hand-written rather than built on tinypool or piscina: those pools cannot grow by the
 * start-up policy above, answer a worker's object-store requests while a task runs, or tell
 * a crash from a timeout in the way a task failure must report it.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { InvokeOptions, Invoker } from '../../sdk/backend.js';
import { TaskTimeoutError, WorkerCrashedError } from '../../sdk/errors.js';
import type { ResultEnvelope, TaskEnvelope } from '../../sdk/protocol.js';
import type { ResolvedLocalOptions } from '../../sdk/options.js';
import type { MemoryStore } from './memory-store.js';
import type { FromWorker, ToWorker } from './messages.js';

interface Job {
  env: TaskEnvelope;
  timeoutMs: number;
  resolve: (r: ResultEnvelope) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job?: Job;
  timer?: NodeJS.Timeout;
  idleTimer?: NodeJS.Timeout;
  /** Why the pool is stopping this worker, so its exit is not reported as a crash. */
  stopping?: 'timeout' | 'idle' | 'close';
  error?: Error;
}

export interface PoolStats {
  started: number;
  alive: number;
  busy: number;
  queued: number;
}

export class WorkerPool implements Invoker {
  private readonly slots = new Set<Slot>();
  private readonly idle: Slot[] = [];
  private readonly queue: Job[] = [];
  private queueHead = 0;
  private starting = 0;
  private startedTotal = 0;
  private closed = false;
  private readonly spawnConcurrency = Math.max(1, availableParallelism());

  constructor(
    private readonly options: ResolvedLocalOptions,
    private readonly store: MemoryStore,
    private readonly entry: URL = new URL('./worker-thread.js', import.meta.url),
  ) {
    for (let i = 0; i < options.minWorkers; i++) this.spawn();
  }

  invoke(env: TaskEnvelope, options: InvokeOptions): Promise<ResultEnvelope> {
    if (this.closed) return Promise.reject(new Error('the worker pool is closed'));
    return new Promise((resolve, reject) => {
      const job: Job = { env, timeoutMs: options.timeoutMs, resolve, reject };
      const slot = this.idle.pop();
      if (slot) this.assign(slot, job);
      else {
        this.queue.push(job);
        this.grow();
      }
    });
  }

  stats(): PoolStats {
    let busy = 0;
    for (const s of this.slots) if (s.job) busy++;
    return { started: this.startedTotal, alive: this.slots.size, busy, queued: this.queue.length - this.queueHead };
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits: Promise<unknown>[] = [];
    for (const s of this.slots) {
      s.stopping = 'close';
      if (s.timer) clearTimeout(s.timer);
      if (s.idleTimer) clearTimeout(s.idleTimer);
      exits.push(s.worker.terminate());
    }
    this.slots.clear();
    this.idle.length = 0;
    const err = new Error('the runtime was shut down before this task ran');
    while (this.queueHead < this.queue.length) this.queue[this.queueHead++]!.reject(err);
    await Promise.all(exits);
  }

  // --- internals ---------------------------------------------------------------------------

  private queued(): number {
    return this.queue.length - this.queueHead;
  }

  private grow(): void {
    while (
      !this.closed &&
      this.starting < this.spawnConcurrency &&
      this.slots.size < this.options.maxWorkers &&
      this.queued() > this.starting
    ) {
      this.spawn();
    }
  }

  private spawn(): void {
    const worker = new Worker(this.entry);
    const slot: Slot = { worker, ready: false };
    this.slots.add(slot);
    this.starting++;
    this.startedTotal++;
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (err) => {
      slot.error = err;
    });
    worker.on('exit', (code) => this.onExit(slot, code));
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'ready':
        slot.ready = true;
        this.starting--;
        this.release(slot);
        this.grow();
        return;
      case 'result': {
        const job = slot.job;
        if (!job) return;
        this.finishJob(slot);
        job.resolve(m.res);
        this.release(slot);
        return;
      }
      case 'get': {
        let reply: ToWorker;
        try {
          reply = { t: 'got', id: m.id, bytes: this.store.getSync(m.key) };
        } catch (err) {
          reply = { t: 'got', id: m.id, error: (err as Error).message };
        }
        slot.worker.postMessage(reply);
        return;
      }
      case 'put':
        this.store.putSync(m.key, m.bytes);
        slot.worker.postMessage({ t: 'stored', id: m.id } satisfies ToWorker);
        return;
    }
  }

  private assign(slot: Slot, job: Job): void {
    if (slot.idleTimer) {
      clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
    }
    slot.job = job;
    slot.worker.ref();
    slot.timer = setTimeout(() => this.onTimeout(slot), job.timeoutMs);
    slot.worker.postMessage({ t: 'task', env: job.env } satisfies ToWorker);
  }

  private finishJob(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.job = undefined;
  }

  /** A free worker takes the next queued task, or goes idle (and stops keeping the process alive). */
  private release(slot: Slot): void {
    if (this.closed || slot.stopping) return;
    if (this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as never;
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      this.assign(slot, job);
      return;
    }
    slot.worker.unref();
    this.idle.push(slot);
    slot.idleTimer = setTimeout(() => {
      if (this.slots.size <= this.options.minWorkers) return;
      const i = this.idle.indexOf(slot);
      if (i >= 0) this.idle.splice(i, 1);
      slot.stopping = 'idle';
      void slot.worker.terminate();
    }, this.options.idleTimeoutMs);
    slot.idleTimer.unref();
  }

  private onTimeout(slot: Slot): void {
    const job = slot.job;
    if (!job) return;
    this.finishJob(slot);
    slot.stopping = 'timeout';
    void slot.worker.terminate();
    job.reject(new TaskTimeoutError(job.env.fn, job.env.taskId, job.timeoutMs));
  }

  private onExit(slot: Slot, code: number): void {
    this.slots.delete(slot);
    const i = this.idle.indexOf(slot);
    if (i >= 0) this.idle.splice(i, 1);
    if (!slot.ready) this.starting--;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    const job = slot.job;
    if (job) {
      this.finishJob(slot);
      const e = slot.error as (Error & { code?: string }) | undefined;
      const detail = e
        ? e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? 'out of memory'
          : `uncaught ${e.name}: ${e.message}`
        : `the worker exited with code ${code} while the task ran`;
      job.reject(new WorkerCrashedError(job.env.fn, job.env.taskId, detail, { cause: e }));
    } else if (!slot.ready && slot.error && !slot.stopping) {
      // A worker that cannot even start would fail every task: fail the queue instead of looping.
      const cause = slot.error;
      while (this.queueHead < this.queue.length) {
        const j = this.queue[this.queueHead++]!;
        j.reject(new WorkerCrashedError(j.env.fn, j.env.taskId, `a worker thread failed to start: ${cause.message}`, { cause }));
      }
      return;
    }
    this.grow();
  }
}
