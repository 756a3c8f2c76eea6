/**
 * Which tasks share one Lambda invocation, apart from the invoker's bookkeeping (pure logic,
 * unit-tested on its own).
 *
 * An invocation costs a request fee, a network round trip and a slot of the account's
 * concurrency whatever the task does; for a task of a millisecond that is nearly all of its
 * cost. So the invoker sends the tasks of functions measured to be short several to one
 * invocation, where the worker runs them one after another (the embedded runtime's pool does
 * the same per worker thread: sdk/local/policy.ts). The rules:
 *
 * - A function's tasks are batched only once its runs were measured short (`SHORT_TASK_MS`, a
 *   moving average of fetch + run + store time, fed each batch's median): the first tasks of a
 *   function go alone.
 * - A function's batch size starts at 1 and doubles with each batch of it that comes back short
 *   (up to `MAX_BATCH_TASKS`); it falls back to 1 as soon as its runs are no longer short. It
 *   is also allowed one more task than the runs measured short in a row so far, so batches
 *   answered side by side (one per invocation slot) teach it as fast as the same runs one
 *   after another: 16 slots answering one task each allow 17, not 2.
 * - A batch takes a fair share of the queue per free invocation slot, so that tasks are spread
 *   over idle slots rather than queued behind each other; but a batch predicted to take under
 *   `SPREAD_MS` (at its function's average time) is not split (a second invocation costs more
 *   than running them in one).
 * - The predicted time of a batch (each function's recent peak run time, fed each batch's 90th
 *   percentile) stays within a latency budget, and a task joins a batch only if the predicted
 *   time of the tasks ahead of it plus its own stays within half its timeout: a task's
 *   predecessors cannot delay it past its timeout. (The worker also checks: it never starts a task that could not finish within the
 *   invocation's budget, and answers it "not started", so the driver sends it again.)
 * - The request stays under the payload limit (the tasks' serialized sizes add up).
 * - Tasks with an affinity (an actor's calls) go alone.
 * - Followers (tasks that take the results of tasks before them in the batch, see
 *   lambda-invoker.ts) right behind a batch go with their producers, past the fair share and
 *   the latency budget (elsewhere they would wait for a round trip), within the other limits.
 */

/** Below this average time (fetch + run + store), a function's tasks may share an invocation. */
export const SHORT_TASK_MS = 10;
/** Most tasks in one invocation (the most a batch request may carry, wire.ts). */
export const MAX_BATCH_TASKS = 1024;
/**
 * A batch predicted to take less than this is not split over free invocation slots: an
 * invocation costs about that much (a round trip to Lambda; on the emulators, measured in
 * serverless-offline's process, about 2 ms of CPU for the HTTP request, the thread hand-offs
 * and the handler's turn, and as much again in the driver's AWS SDK), and each one pays a
 * request fee. Splitting 1,000 no-ops (about 30 ms) into four invocations, as a limit of 5 ms
 * did, doubled the Lambda side's CPU per task on the emulators (JIT and collections in four
 * sandboxes instead of one or two) for no gain in time.
 */
export const SPREAD_MS = 20;
/** Most predicted run time of one batch: what the first task's answer may wait for the others. */
export const LATENCY_BUDGET_MS = 50;
/**
 * A batch holds tasks predicted to take milliseconds; once it has run this long, one of them
 * was not short after all: the worker starts no more of its tasks and answers them "not
 * started" (the driver sends them again, and has learnt the function's time). The invocation's
 * budget is its longest task timeout plus this.
 */
export const BATCH_OVERRUN_MS = 1000;
/** A task's predecessors in its batch, with the task itself, are predicted to take at most this share of its timeout. */
export const TIMEOUT_SHARE = 0.5;

/** What the policy needs to know of a queued task. */
export interface BatchCandidate {
  fn: string;
  timeoutMs: number;
  /** Its share of the request, in bytes. */
  bytes: number;
  /** False for tasks that must go alone (an actor's call). */
  batchable: boolean;
  /** A follower: ids of the tasks it takes results from, which must go before it in its batch. */
  after?: readonly string[];
  /** Its task id (what a follower's `after` names). */
  id?: string;
}

/** What a function's average keeps of itself per run recorded (a moving average, 0.2 per run). */
const AVG_KEEP = 0.8;
/** What its peak keeps of itself per run recorded, when the runs are faster (it rises at once to a slower one). */
const PEAK_KEEP = 0.9;

/**
 * The median and the 90th percentile (nearest rank: the smallest time at least 90 % of the runs
 * took at most) of one batch's run times of one function.
 */
export function batchStats(times: readonly number[]): { median: number; p90: number } {
  // A typed array sorts by value natively: no comparator called n log n times.
  const xs = Float64Array.from(times).sort();
  const n = xs.length;
  const m = n >> 1;
  return { median: n % 2 ? xs[m]! : (xs[m - 1]! + xs[m]!) / 2, p90: xs[Math.ceil(0.9 * n) - 1]! };
}

interface FnStats {
  /** Moving average of a run's time, ms. */
  avg: number;
  /** Recent peak run time, ms (decays towards the runs seen since). */
  peak: number;
  /** Tasks of this function one batch may take now. */
  size: number;
  /** Runs measured since its average was last not short (the evidence its batches grow on). */
  shortRuns: number;
}

export class BatchPolicy {
  private readonly fns = new Map<string, FnStats>();
  private largest = 1;

  constructor(private readonly limits: { shortMs?: number; maxTasks?: number; latencyBudgetMs?: number } = {}) {}

  private get shortMs(): number {
    return this.limits.shortMs ?? SHORT_TASK_MS;
  }

  /**
   * A batch came back: the time of each of its tasks (fetch + run + store), by function.
   * A function whose runs are short may send twice as many tasks in its next batch.
   *
   * Each function's tasks in the batch count as one sample of a few hundred runs rather than as
   * runs one by one: their median moves the average and their 90th percentile the peak, each as
   * much as that many runs of that time would (`batchStats`). So one run of the batch held up
   * (a descheduled thread, a collection) moves neither: taken run by run, one such run at the
   * end of a batch of no-ops raised the peak enough to split the next batch over several
   * invocations. In a batch of fewer than ten runs the 90th percentile is the slowest run, so a
   * function sent alone or in small batches is predicted by its slow runs, as before.
   */
  record(runs: ReadonlyArray<{ fn: string; ms: number }>): void {
    const byFn = new Map<string, number[]>();
    for (const { fn, ms } of runs) {
      const xs = byFn.get(fn);
      if (xs) xs.push(ms);
      else byFn.set(fn, [ms]);
    }
    const max = this.limits.maxTasks ?? MAX_BATCH_TASKS;
    for (const [fn, xs] of byFn) {
      const n = xs.length;
      const { median, p90 } = batchStats(xs);
      const s = this.fns.get(fn);
      if (!s) this.fns.set(fn, { avg: median, peak: p90, size: 1, shortRuns: 0 });
      else {
        // As n runs of these times, one after another, would move them.
        s.avg = median + (s.avg - median) * AVG_KEEP ** n;
        s.peak = Math.max(p90, p90 + (s.peak - p90) * PEAK_KEEP ** n);
      }
      const t = this.fns.get(fn)!;
      t.shortRuns = this.isShort(fn) ? t.shortRuns + n : 0;
      t.size = this.isShort(fn) ? Math.min(max, Math.max(t.size, 2 * n, t.shortRuns + 1)) : 1;
    }
    this.largest = 1;
    for (const s of this.fns.values()) if (s.size > this.largest) this.largest = s.size;
  }

  /** True when `fn`'s runs so far averaged under the short threshold (unknown functions are not short). */
  isShort(fn: string): boolean {
    const s = this.fns.get(fn);
    return s !== undefined && s.avg < this.shortMs;
  }

  /** How many tasks of `fn` one batch may take now (1 for a function not known to be short). */
  sizeOf(fn: string): number {
    return this.isShort(fn) ? this.fns.get(fn)!.size : 1;
  }

  /** The largest batch any function may send now: how many tasks per invocation slot are worth handing to the invoker. */
  tasksPerSlot(): number {
    return this.largest;
  }

  /**
   * How many tasks from `queue[start]` on go in the next invocation (at least 1), given the
   * free invocation slots and the request's byte budget.
   */
  take(queue: ArrayLike<BatchCandidate>, start: number, freeSlots: number, byteBudget: number): number {
    const head = queue[start]!;
    if (!head.batchable || !this.isShort(head.fn)) return 1;
    const queued = queue.length - start;
    const share = Math.ceil(queued / Math.max(1, freeSlots));
    // Whether a split is worth an invocation is a question of the tasks' usual time (the average), not of one slow run: a
    // single outlier in the peak (a collection, a descheduled thread) would otherwise split a batch of no-ops over every
    // free slot, paying an invocation per few tasks. The peak still bounds the latency budget and the timeout share below.
    const limit = Math.min(this.sizeOf(head.fn), Math.max(share, Math.floor(SPREAD_MS / Math.max(this.fns.get(head.fn)!.avg, 1e-3))));
    const budget = this.limits.latencyBudgetMs ?? LATENCY_BUDGET_MS;
    let predicted = this.fns.get(head.fn)!.peak;
    let bytes = head.bytes;
    let n = 1;
    while (n < limit && start + n < queue.length) {
      const c = queue[start + n]!;
      if (!c.batchable || !this.isShort(c.fn) || n + 1 > this.sizeOf(c.fn)) break;
      const p = this.fns.get(c.fn)!.peak;
      if (predicted + p > budget || predicted + p > c.timeoutMs * TIMEOUT_SHARE || bytes + c.bytes > byteBudget) break;
      predicted += p;
      bytes += c.bytes;
      n++;
    }
    return this.withFollowers(queue, start, n, predicted, bytes, byteBudget);
  }

  /**
   * Followers right behind a batch whose producers are all in it go with them, past the fair
   * share and the latency budget: in another invocation a follower is handed back and waits
   * for its producers' answer and one more round trip. Each must still be short, within its
   * function's batch size, the request's bytes, and half its timeout after the tasks ahead.
   */
  private withFollowers(queue: ArrayLike<BatchCandidate>, start: number, n: number, predicted: number, bytes: number, byteBudget: number): number {
    const next = queue[start + n];
    if (next?.after === undefined || !this.isShort(queue[start]!.fn)) return n;
    const ids = new Set<string>();
    for (let i = start; i < start + n; i++) ids.add(queue[i]!.id!);
    const max = this.limits.maxTasks ?? MAX_BATCH_TASKS;
    while (n < max && start + n < queue.length) {
      const c = queue[start + n]!;
      if (!c.after || !c.batchable || !this.isShort(c.fn) || n + 1 > this.sizeOf(c.fn) || !c.after.every((id) => ids.has(id))) break;
      const p = this.fns.get(c.fn)!.peak;
      if (predicted + p > c.timeoutMs * TIMEOUT_SHARE || bytes + c.bytes > byteBudget) break;
      predicted += p;
      bytes += c.bytes;
      ids.add(c.id!);
      n++;
    }
    return n;
  }
}
