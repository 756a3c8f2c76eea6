/**
 * The worker pool's dispatch path, with scripted thread entries that answer at once: how the
 * results of one message reach the orchestrator (invokeThen) and when the pool starts threads
 * for tasks of a function it has not seen run. Counts, not clocks: the growth policy runs on a
 * clock the test moves (`now`), so what it decides does not depend on the machine's load.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import type { InvokeCallback } from '../../sdk/backend.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { SPAWN_AFTER_MS, batchLimit } from '../../sdk/local/policy.js';
import { WorkerPool } from '../../sdk/local/pool.js';
import { PROTOCOL_VERSION, type ResultEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';

/** The pool's packed message format (sdk/local/wire.ts), for the scripted threads. */
const wire = new URL('../../sdk/local/wire.js', import.meta.url).href;
const entry = (code: string) => new URL(`data:text/javascript,${encodeURIComponent(code)}`);

/**
 * The worker's shared progress counters, as sdk/local/worker-thread.ts keeps them, for the
 * scripted threads: `started()` as a task starts (its sequence number in [0]), `finished()` as
 * it ends (the count of tasks finished in [1]).
 */
const counters = `
  import { workerData as counterData } from 'node:worker_threads';
  let seq = 0;
  const started = () => Atomics.store(counterData.progress, 0, seq);
  const finished = () => Atomics.store(counterData.progress, 1, ++seq);
`;

/** A count of the tasks the test's threads said they took (`took`), and a wait until it reaches k. */
function takenCount(): { took: () => void; tasksTaken: (k: number) => Promise<void> } {
  let taken = 0;
  const waiters: Array<() => void> = [];
  return {
    took() {
      taken++;
      for (const w of waiters.splice(0)) w();
    },
    async tasksTaken(k) {
      while (taken < k) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

/**
 * A thread that answers every message of tasks with one message of results, after `delayMs`;
 * each result's bytes hold how many tasks came in that message, and its run time is `runMs`.
 */
function answering(runMs: number, delayMs = 0): URL {
  return entry(`
    import { parentPort } from 'node:worker_threads';
    import { packResults, unpackTasks } from '${wire}';
    ${counters}
    parentPort.on('message', (m) => {
      if (m.kind !== 'tasks') return;
      const envs = unpackTasks(m.batch).map((t) => t.env);
      for (const e of envs) { started(); finished(); }
      const batch = packResults(envs.map((e) => ({ v: ${PROTOCOL_VERSION}, kind: 'value', taskId: e.taskId, bytes: new Uint8Array([envs.length]), timing: { fetchMs: 0, runMs: ${runMs}, storeMs: 0, startedAt: 0 } })));
      if (${delayMs} > 0) setTimeout(() => parentPort.postMessage({ kind: 'results', batch }), ${delayMs});
      else parentPort.postMessage({ kind: 'results', batch });
    });
    parentPort.postMessage({ kind: 'ready' });
  `);
}

/**
 * A thread that answers every message of tasks at once (run time 0: short), except a message
 * holding a task named h-*: it takes that one and never answers, and says so on `channel`.
 */
function holding(channel: string): URL {
  return entry(`
    import { parentPort } from 'node:worker_threads';
    import { packResults, unpackTasks } from '${wire}';
    ${counters}
    const chan = new BroadcastChannel('${channel}');
    parentPort.on('message', (m) => {
      if (m.kind !== 'tasks') return;
      const envs = unpackTasks(m.batch).map((t) => t.env);
      if (envs.some((e) => e.taskId.startsWith('h-'))) { started(); chan.postMessage('took'); return; }
      for (const e of envs) { started(); finished(); }
      parentPort.postMessage({ kind: 'results', batch: packResults(envs.map((e) => ({ v: ${PROTOCOL_VERSION}, kind: 'value', taskId: e.taskId, bytes: new Uint8Array([0]), timing: { fetchMs: 0, runMs: 0, storeMs: 0, startedAt: 0 } }))) });
    });
    parentPort.postMessage({ kind: 'ready' });
  `);
}

/** A thread that answers each task at once, in order: a result's timing.startedAt is the task's place in the order this thread ran them (from 0). */
const ordering = entry(`
  import { parentPort } from 'node:worker_threads';
  import { packResults, unpackTasks } from '${wire}';
  let seq = 0;
  parentPort.on('message', (m) => {
    if (m.kind !== 'tasks') return;
    const envs = unpackTasks(m.batch).map((t) => t.env);
    parentPort.postMessage({ kind: 'results', batch: packResults(envs.map((e) => ({ v: ${PROTOCOL_VERSION}, kind: 'value', taskId: e.taskId, bytes: new Uint8Array([0]), timing: { fetchMs: 0, runMs: 0, storeMs: 0, startedAt: seq++ } }))) });
  });
  parentPort.postMessage({ kind: 'ready' });
`);

function envelope(id: string, fn = 'work'): TaskEnvelope {
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'j',
    taskId: id,
    fn,
    args: { kind: 'inline', bytes: new Uint8Array([0x4a, 0x5b, 0x5d]) },
    deps: {},
    resultKey: `j/${id}`,
    inlineLimit: 1024,
  };
}

const opts = { timeoutMs: 60_000, memoryMB: 128 };

/** invokeThen as a promise of the result, calling `then` synchronously inside the pool's callback first. */
function run(pool: WorkerPool, id: string, then?: () => void): Promise<ResultEnvelope> {
  return new Promise((resolve, reject) => {
    const done: InvokeCallback = (res, err) => {
      if (!res) return reject(err as Error);
      then?.();
      resolve(res);
    };
    pool.invokeThen(envelope(id), opts, done);
  });
}

describe('worker pool dispatch', () => {
  it('the tasks that one message of results makes ready go to the worker together, in one message', async () => {
    // Two threads: one answers, the other is idle when the results arrive.
    const pool = new WorkerPool({ maxWorkers: 2, minWorkers: 2, idleTimeoutMs: 1000 }, new MemoryStore(), answering(0));
    try {
      // Until both threads are up (results name their worker): the function is now known to be short.
      // Short tasks handed over together are batched, a fair share per core: enough for two batches.
      for (let seen = new Set<string>(), round = 0; seen.size < 2; round++) {
        const some = await Promise.all(Array.from({ length: 64 }, (_, i) => run(pool, `warm-${round}-${i}`)));
        seen = new Set(some.map((r) => r.worker!.id));
      }
      const dependents: Promise<ResultEnvelope>[] = [];
      // Inside the callback of a result, as the orchestrator does when a result makes tasks ready.
      await run(pool, 'input', () => {
        for (let i = 0; i < 3; i++) dependents.push(run(pool, `dep-${i}`));
        assert.equal(pool.stats().queued, 3, 'queued while the results are handed over, not sent one by one');
      });
      const sizes = (await Promise.all(dependents)).map((r) => (r as { bytes: Uint8Array }).bytes[0]);
      // Without the hand-over, the first dependent would go alone to the idle worker.
      // The first task of a batch leaves the queue before the batch size is set from what is left.
      const first = Math.min(3, batchLimit(2, availableParallelism()));
      assert.equal(sizes[0], first, `the first dependents went out ${sizes[0]} to a message, expected ${first}`);
    } finally {
      await pool.close();
    }
  });

  it('the tasks that results make ready run before tasks queued earlier that waited for nothing', async () => {
    const pool = new WorkerPool({ maxWorkers: 1, minWorkers: 1, idleTimeoutMs: 1000 }, new MemoryStore(), ordering);
    try {
      // Known to be short: batched, so most of the queue is still waiting when the first results arrive.
      await Promise.all(Array.from({ length: 8 }, (_, i) => run(pool, `warm-${i}`)));
      const dependents: Promise<ResultEnvelope>[] = [];
      const queued = Array.from({ length: 100 }, (_, i) => run(pool, `t-${i}`, i === 0 ? () => dependents.push(run(pool, 'dep-0'), run(pool, 'dep-1')) : undefined));
      const order = (rs: ResultEnvelope[]) => rs.map((r) => r.timing.startedAt ?? Number.NaN);
      const ts = order(await Promise.all(queued));
      const deps = order(await Promise.all(dependents));
      assert.ok(deps[0]! < deps[1]!, 'the dependents keep the order they came in');
      const later = ts.filter((t) => t > deps[1]!).length;
      // Queued behind the 100 (first in, first out), they would have run last.
      assert.ok(later > 0, `the dependents ran after all ${ts.length} tasks queued before them`);
    } finally {
      await pool.close();
    }
  });

  it('a failure reaches the callback on a later microtask, never inside invokeThen', async () => {
    const pool = new WorkerPool({ maxWorkers: 1, minWorkers: 0, idleTimeoutMs: 1000 }, new MemoryStore(), answering(0));
    await pool.close();
    let called = false;
    const failed = new Promise<unknown>((resolve) =>
      pool.invokeThen(envelope('late'), opts, (res, err) => {
        called = true;
        resolve(res ?? err);
      }),
    );
    assert.equal(called, false);
    assert.match(String(await failed), /shut down/);
  });

  it('does not start threads beyond one per core while its workers keep answering, for tasks of a function it has not seen finish quickly', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    const spare = 12;
    // The policy's clock is the test's: it moves only as results arrive, 1/16 ms per result, so
    // the workers answer 80 times per SPAWN_AFTER_MS however loaded the machine is.
    let clock = 0;
    // Each task reports 3 ms of run time (not short: one task per message) and is answered at once.
    const pool = new WorkerPool({ maxWorkers: cores + spare, minWorkers: 0, idleTimeoutMs: 1000, now: () => clock }, new MemoryStore(), answering(3));
    try {
      const n = 2000;
      await Promise.all(Array.from({ length: n }, (_, i) => run(pool, `t-${i}`, () => (clock += 1 / 16))));
      // The queue's head waited far longer than SPAWN_AFTER_MS (a pool that looked only at that
      // starts all `spare` threads), but some worker answered every 1/16 ms all along.
      assert.ok(clock >= 20 * SPAWN_AFTER_MS);
      assert.equal(pool.stats().started, cores, `started ${pool.stats().started} threads on ${cores} cores while the workers kept answering`);
    } finally {
      await pool.close();
    }
  });

  it('starts threads past one per core for tasks that waited SPAWN_AFTER_MS while no worker answered', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    // Threads that take their task and never answer; each says so on a channel.
    const took = new BroadcastChannel('pool-dispatch-took');
    const count = takenCount();
    const tasksTaken = count.tasksTaken;
    took.onmessage = count.took;
    const silent = entry(`
      import { parentPort } from 'node:worker_threads';
      ${counters}
      const took = new BroadcastChannel('pool-dispatch-took');
      parentPort.on('message', (m) => { if (m.kind === 'tasks') { started(); took.postMessage(1); } });
      parentPort.postMessage({ kind: 'ready' });
    `);
    const pool = new WorkerPool({ maxWorkers: cores + 4, minWorkers: 0, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), silent);
    try {
      const pending = Array.from({ length: cores + 2 }, (_, i) => run(pool, `s-${i}`).catch(() => undefined));
      // A worker per core, each busy with its task; two tasks wait, the clock stands still: no more threads.
      await tasksTaken(cores);
      assert.equal(pool.stats().started, cores);
      assert.equal(pool.stats().queued, 2);
      // Both have waited SPAWN_AFTER_MS and no worker answered meanwhile: a thread is started for each.
      clock = SPAWN_AFTER_MS;
      await tasksTaken(cores + 2);
      assert.equal(pool.stats().started, cores + 2);
      assert.equal(pool.stats().queued, 0);
      void pending;
    } finally {
      took.close();
      await pool.close();
    }
  });
  it('counts a task’s wait for more threads from when a worker was ready to take it, not while the first threads start', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    // Threads that say hello, become ready only once the test lets them, then take their task and never answer.
    const chan = new BroadcastChannel('pool-dispatch-start');
    let released = false;
    const { took, tasksTaken } = takenCount();
    chan.onmessage = (m: MessageEvent) => {
      if (m.data === 'hello' && released) chan.postMessage('go');
      if (m.data === 'took') took();
    };
    const gated = entry(`
      import { parentPort } from 'node:worker_threads';
      const chan = new BroadcastChannel('pool-dispatch-start');
      let ready = false;
      chan.onmessage = (m) => { if (m.data === 'go' && !ready) { ready = true; parentPort.postMessage({ kind: 'ready' }); } };
      ${counters}
      parentPort.on('message', (m) => { if (m.kind === 'tasks') { started(); chan.postMessage('took'); } });
      chan.postMessage('hello');
    `);
    const pool = new WorkerPool({ maxWorkers: cores + 4, minWorkers: 0, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), gated);
    try {
      const pending = Array.from({ length: cores + 2 }, (_, i) => run(pool, `s-${i}`).catch(() => undefined));
      // The first threads take long to start (the clock moves on): nothing could answer meanwhile.
      clock = 20 * SPAWN_AFTER_MS;
      released = true;
      chan.postMessage('go');
      await tasksTaken(cores);
      // The pool's growth checks run on timers and after I/O: let them.
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().started, cores, 'no thread past one per core the moment the first ones are ready');
      assert.equal(pool.stats().queued, 2);
      // SPAWN_AFTER_MS after they were ready, still no answer: a thread for each waiting task.
      clock += SPAWN_AFTER_MS;
      await tasksTaken(cores + 2);
      assert.equal(pool.stats().started, cores + 2);
      void pending;
    } finally {
      chan.close();
      await pool.close();
    }
  });
  it('does not start a thread for a task of a new function while every core runs a batch of short tasks', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    // Threads that answer at once (run time 0: short), except the tasks named h-*: those they take and hold.
    const chan = new BroadcastChannel('pool-dispatch-held');
    const { took, tasksTaken } = takenCount();
    chan.onmessage = took;
    const pool = new WorkerPool({ maxWorkers: cores + 2, minWorkers: cores, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), holding('pool-dispatch-held'));
    try {
      // Every thread up and the function known to be short.
      for (let seen = new Set<string>(), round = 0; seen.size < cores; round++) {
        const some = await Promise.all(Array.from({ length: 64 }, (_, i) => run(pool, `warm-${round}-${i}`)));
        seen = new Set(some.map((r) => r.worker!.id));
      }
      // One short task to each thread, which it holds: every core runs a batch of short tasks.
      const held = Array.from({ length: cores }, (_, i) => i).map(async (i) => {
        await tasksTaken(i);
        const p = run(pool, `h-${i}`).catch(() => undefined);
        await tasksTaken(i + 1);
        return p;
      });
      await tasksTaken(cores);
      // A task of a function never seen, queued long past SPAWN_AFTER_MS with no answer meanwhile.
      clock = 100 * SPAWN_AFTER_MS;
      const fresh = new Promise<unknown>((resolve) => pool.invokeThen(envelope('new-0', 'never-seen'), opts, (res, err) => resolve(res ?? err)));
      clock += 20 * SPAWN_AFTER_MS;
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().queued, 1);
      assert.equal(pool.stats().started, cores, 'no thread started: a core frees up when its batch ends');
      void held;
      void fresh;
    } finally {
      chan.close();
      await pool.close();
    }
  });
  it('does not start a thread past one per core for short tasks while a worker runs batches of them, however long they wait', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    const chan = new BroadcastChannel('pool-dispatch-short');
    const { took, tasksTaken } = takenCount();
    chan.onmessage = took;
    const pool = new WorkerPool({ maxWorkers: cores + 2, minWorkers: cores, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), holding('pool-dispatch-short'));
    const hold = (id: string, fn: string) => new Promise<unknown>((resolve) => pool.invokeThen(envelope(id, fn), opts, (res, err) => resolve(res ?? err)));
    try {
      // Every thread up and the function known to be short.
      for (let seen = new Set<string>(), round = 0; seen.size < cores; round++) {
        const some = await Promise.all(Array.from({ length: 64 }, (_, i) => run(pool, `warm-${round}-${i}`)));
        seen = new Set(some.map((r) => r.worker!.id));
      }
      // Every thread but one holds a task of a function never seen (not short: one per thread)...
      const held = Array.from({ length: cores - 1 }, (_, i) => hold(`h-long-${i}`, 'never-seen'));
      await tasksTaken(cores - 1);
      // ...and the last one a batch of short tasks, which it holds too.
      held.push(hold('h-short', 'work'));
      await tasksTaken(cores);
      // Short tasks wait behind them, far longer than SPAWN_AFTER_MS, with no answer meanwhile.
      clock = 100 * SPAWN_AFTER_MS;
      const queued = Array.from({ length: 8 }, (_, i) => run(pool, `q-${i}`).catch(() => undefined));
      clock += 20 * SPAWN_AFTER_MS;
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().queued, 8);
      assert.equal(pool.stats().started, cores, 'no thread started: the worker running short tasks drains them when its batch ends');
      void held;
      void queued;
    } finally {
      chan.close();
      await pool.close();
    }
  });

  it('does not start threads past one per core while a worker has finished a task whose result the pool has not read yet', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    // Threads that take their task and never answer; a task named f-* they mark finished in the
    // worker's shared counters, as a worker does before its result is read.
    const took = new BroadcastChannel('pool-dispatch-unread');
    const { took: onTook, tasksTaken } = takenCount();
    took.onmessage = onTook;
    const finishing = entry(`
      import { parentPort } from 'node:worker_threads';
      import { unpackTasks } from '${wire}';
      ${counters}
      const took = new BroadcastChannel('pool-dispatch-unread');
      parentPort.on('message', (m) => {
        if (m.kind !== 'tasks') return;
        started();
        if (unpackTasks(m.batch).some((t) => t.env.taskId.startsWith('f-'))) finished();
        took.postMessage(1);
      });
      parentPort.postMessage({ kind: 'ready' });
    `);
    const pool = new WorkerPool({ maxWorkers: cores + 4, minWorkers: 0, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), finishing);
    try {
      const pending = Array.from({ length: cores + 2 }, (_, i) => run(pool, i === 0 ? 'f-0' : `s-${i}`).catch(() => undefined));
      await tasksTaken(cores);
      assert.equal(pool.stats().queued, 2);
      // The two queued tasks waited SPAWN_AFTER_MS and more with no answer read; one worker is done with its task.
      clock = 4 * SPAWN_AFTER_MS;
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().started, cores, 'no thread started: a worker is about to take the next task');
      assert.equal(pool.stats().queued, 2);
      void pending;
    } finally {
      took.close();
      await pool.close();
    }
  });
  it('expects no answer yet from a worker that became ready less than SPAWN_AFTER_MS ago', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    // Threads that become ready when the test lets each of them; they answer a task named a-* at
    // once (run time 3 ms: not short) and take any other and never answer.
    const chan = new BroadcastChannel('pool-dispatch-settled');
    const { took, tasksTaken } = takenCount();
    const hellos: number[] = [];
    let first: ((id: number) => void) | undefined;
    chan.onmessage = (m: MessageEvent) => {
      if (m.data === 'took') took();
      else if (typeof m.data === 'number') {
        hellos.push(m.data);
        first?.(m.data);
      }
    };
    const gated = entry(`
      import { parentPort, threadId } from 'node:worker_threads';
      import { packResults, unpackTasks } from '${wire}';
      ${counters}
      const chan = new BroadcastChannel('pool-dispatch-settled');
      let ready = false;
      chan.onmessage = (m) => { if (m.data === 'go-' + threadId && !ready) { ready = true; parentPort.postMessage({ kind: 'ready' }); } };
      parentPort.on('message', (m) => {
        if (m.kind !== 'tasks') return;
        const envs = unpackTasks(m.batch).map((t) => t.env);
        started();
        if (!envs[0].taskId.startsWith('a-')) { chan.postMessage('took'); return; }
        finished();
        parentPort.postMessage({ kind: 'results', batch: packResults(envs.map((e) => ({ v: ${PROTOCOL_VERSION}, kind: 'value', taskId: e.taskId, bytes: new Uint8Array([0]), timing: { fetchMs: 0, runMs: 3, storeMs: 0, startedAt: 0 } }))) });
      });
      chan.postMessage(threadId);
    `);
    const pool = new WorkerPool({ maxWorkers: cores + 4, minWorkers: 0, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), gated);
    try {
      const firstThread = new Promise<number>((resolve) => {
        first = resolve;
      });
      const answered = run(pool, 'a-0');
      const pending = Array.from({ length: cores + 2 }, (_, i) => run(pool, `h-${i}`).catch(() => undefined));
      // One thread ready at 0: it answers a-0 at once, then holds h-0.
      chan.postMessage(`go-${await firstThread}`);
      await answered;
      await tasksTaken(1);
      // The others become ready just before SPAWN_AFTER_MS and hold a task each; two tasks wait.
      clock = SPAWN_AFTER_MS - 1;
      while (hellos.length < cores) await new Promise((r) => setTimeout(r, 5));
      for (const id of hellos.slice(1)) chan.postMessage(`go-${id}`);
      await tasksTaken(cores);
      assert.equal(pool.stats().queued, 2);
      // Past SPAWN_AFTER_MS: the one worker ready that long answered in this window, the others
      // just started. No thread yet.
      clock = SPAWN_AFTER_MS + 1;
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().started, cores, 'no thread started while the workers that could have answered did');
      // A window later, no answer from any: a thread for each waiting task.
      clock = 3 * SPAWN_AFTER_MS;
      for (let i = 0; i < 500 && pool.stats().started < cores + 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().started, cores + 2);
      void pending;
    } finally {
      chan.close();
      await pool.close();
    }
  });
  it('does not start threads past one per core while a worker has not started the task it was handed', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    // Threads that take their task but do not start it (as a thread waiting for a core) and never answer.
    const took = new BroadcastChannel('pool-dispatch-unstarted');
    const { took: onTook, tasksTaken } = takenCount();
    took.onmessage = onTook;
    const waiting = entry(`
      import { parentPort } from 'node:worker_threads';
      const took = new BroadcastChannel('pool-dispatch-unstarted');
      parentPort.on('message', (m) => { if (m.kind === 'tasks') took.postMessage(1); });
      parentPort.postMessage({ kind: 'ready' });
    `);
    const pool = new WorkerPool({ maxWorkers: cores + 4, minWorkers: 0, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), waiting);
    try {
      const pending = Array.from({ length: cores + 2 }, (_, i) => run(pool, `s-${i}`).catch(() => undefined));
      await tasksTaken(cores);
      assert.equal(pool.stats().queued, 2);
      clock = 4 * SPAWN_AFTER_MS;
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().started, cores, 'no thread started: the workers are behind, not held up by long tasks');
      void pending;
    } finally {
      took.close();
      await pool.close();
    }
  });
  it('does not start threads past one per core while the first ones are still starting', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    let clock = 0;
    // Threads of which only the first to say hello becomes ready; it takes its task and holds it (started).
    const chan = new BroadcastChannel('pool-dispatch-first');
    const { took, tasksTaken } = takenCount();
    let firstId: number | undefined;
    chan.onmessage = (m: MessageEvent) => {
      if (m.data === 'took') took();
      else if (typeof m.data === 'number' && firstId === undefined) {
        firstId = m.data;
        chan.postMessage(`go-${firstId}`);
      }
    };
    const gated = entry(`
      import { parentPort, threadId } from 'node:worker_threads';
      ${counters}
      const chan = new BroadcastChannel('pool-dispatch-first');
      let ready = false;
      chan.onmessage = (m) => { if (m.data === 'go-' + threadId && !ready) { ready = true; parentPort.postMessage({ kind: 'ready' }); } };
      parentPort.on('message', (m) => { if (m.kind === 'tasks') { started(); chan.postMessage('took'); } });
      chan.postMessage(threadId);
    `);
    const pool = new WorkerPool({ maxWorkers: cores + 4, minWorkers: 0, idleTimeoutMs: 60_000, now: () => clock }, new MemoryStore(), gated);
    try {
      const pending = Array.from({ length: cores + 2 }, (_, i) => run(pool, `s-${i}`).catch(() => undefined));
      await tasksTaken(1);
      // The ready one is held up by its task long past SPAWN_AFTER_MS; the others are still starting.
      clock = 20 * SPAWN_AFTER_MS;
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(pool.stats().started, cores, 'no thread started before a worker per core is ready');
      void pending;
    } finally {
      chan.close();
      await pool.close();
    }
  });
});
