/**
 * Chaining's edges in the orchestrator (`dispatch`, `chainFrom`, `followNow`, `followerArgs`,
 * `unchained`) and how a run's answer is taken (`finished`): the in-flight limit while
 * dependents follow their producers, who may follow (not a producer the invoker does not chain,
 * not one handed over in an earlier turn or still queued, not a task cancelled, in flight or
 * still uploading its arguments), a follower handed back (NOT_CHAINED), a run cancelled and
 * then crashing, and a run ending while blocked in get. Against the scripted backend with the
 * chaining capability (test/fakes/scripted-backend.ts: each turn is one invocation) and, for a
 * run blocked in get, the embedded runtime's worker side in this process. No clock decides:
 * held runs, counts and turns.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DependencyError, get, remote, Runtime, TaskCancelledError, WorkerCrashedError, type VolleyEvent } from 'volley';
import { NOT_CHAINED, type Backend, type TaskHost } from '../../sdk/backend.js';
import { markWorker } from '../../sdk/context.js';
import { inlineBytes } from '../../sdk/envelope.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { ThreadSession } from '../../sdk/local/thread-session.js';
import { hostLink } from '../fakes/thread-link.js';
import type { ResultEnvelope, TaskEnvelope } from '../../sdk/protocol.js';
import { executeTask } from '../../sdk/worker/execute.js';
import { useAsyncTaskScope } from '../../sdk/worker/nested.js';
import { fast, scriptedBackend, turns } from '../fakes/scripted-backend.js';

// This process plays the workers too: a running task's get() reaches its session.
markWorker();
useAsyncTaskScope();

const pathLeaf = remote(function pathLeaf(x: number): number {
  return x;
});
const pathAdd = remote(function pathAdd(a: number, b: number): number {
  if (a < 0 || b < 0) throw new RangeError(`negative input ${a}, ${b}`);
  return a + b;
});
const pathLen = remote(function pathLen(s: string): number {
  return s.length;
});
const pathConcat = remote(function pathConcat(s: string, n: number): number {
  return s.length + n;
});

/** A test-controlled gate: `wait` resolves once `open` was called. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}
const crashed = (env: TaskEnvelope) => new WorkerCrashedError(env.fn, env.taskId, 'exit code 137');
const chainAll = { chains: () => true };

describe('chaining within maxConcurrency', () => {
  it('a task submitted onto producers in flight at maxConcurrency waits for a slot instead of following them', async () => {
    const f = scriptedBackend(undefined, undefined, chainAll);
    const rt = new Runtime({ ...fast, maxConcurrency: 2 }, { backend: f.backend });
    try {
      await rt.ready();
      const l = [1, 2, 3, 4].map((x) => rt.remote(pathLeaf, x));
      const top = rt.remote(pathAdd, rt.remote(pathAdd, l[0]!, l[1]!), rt.remote(pathAdd, l[2]!, l[3]!));
      assert.equal(await rt.get(top), 10);
      assert.equal(f.invocations.peak, 2, 'never more than maxConcurrency tasks handed over at once');
      assert.equal(f.invoked.length, 7, 'each task ran once');
    } finally {
      await rt.shutdown();
    }
  });

  it('a producer run again with one slot to spare takes one waiting dependent along; the others run after it, each once', async () => {
    const f = scriptedBackend(
      (env) => {
        if (env.fn === 'pathLeaf' && env.attempt === undefined) throw crashed(env);
      },
      undefined,
      chainAll,
    );
    const rt = new Runtime({ ...fast, maxConcurrency: 2 }, { backend: f.backend });
    try {
      await rt.ready();
      const a = rt.remote(pathLeaf, 4);
      const d = [1, 2, 3].map((k) => rt.remote(pathAdd, a, k));
      assert.deepEqual(await rt.get(d), [5, 6, 7]);
      assert.equal(f.invocations.peak, 2, 'never more than maxConcurrency tasks handed over at once');
      // First invocation: a and its first dependent (handed back: a crashed). a's retry: the
      // dependent follows it again, into the slot the hand-back gave back; then the other two.
      assert.equal(f.invocations.notChained, 1);
      assert.equal(f.invocations.followers, 1, 'the retry of a took one follower: the hand-back gave its slot back');
      assert.deepEqual(
        f.invoked.map((i) => i.taskId),
        [a.id, a.id, d[0]!.id, d[1]!.id, d[2]!.id],
      );
      assert.equal(rt.faultCounts.retries, 1);
    } finally {
      await rt.shutdown();
    }
  });
});

describe('who follows a producer', () => {
  it('not the dependents of a producer whose function the invoker does not chain', async () => {
    const f = scriptedBackend(undefined, undefined, { chains: (fn) => fn === 'pathAdd' });
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      const a = rt.remote(pathLeaf, 1);
      const b = rt.remote(pathAdd, a, 2);
      assert.equal(await rt.get(b), 3);
      assert.equal(f.invocations.followers, 0);
      assert.equal(f.invocations.count, 2, 'one invocation per level');
      assert.deepEqual(
        f.handed.map((h) => h.after),
        [undefined, undefined],
      );
    } finally {
      await rt.shutdown();
    }
  });

  it('not a task submitted a turn after its producer was handed over, while that producer still runs', async () => {
    const held = gate();
    let holding = '';
    const f = scriptedBackend(
      async (env) => {
        if (env.taskId === holding) await held.opened;
      },
      undefined,
      chainAll,
    );
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      // A first turn of chaining goes by, so the orchestrator's turns have moved on once already.
      assert.equal(await rt.get(rt.remote(pathAdd, rt.remote(pathLeaf, 1), 1)), 2);
      await turns(2);
      const before = { ...f.invocations };
      const a = rt.remote(pathLeaf, 5);
      holding = a.id;
      await turns(3);
      assert.deepEqual(f.invoked.map((i) => i.taskId).slice(-1), [a.id], 'a runs, held');
      const b = rt.remote(pathAdd, a, 1);
      await turns(3);
      held.open();
      assert.equal(await rt.get(b), 6);
      assert.deepEqual(f.handed.find((h) => h.taskId === b.id)?.after, undefined, 'b was handed over once its argument was ready, not as a follower');
      assert.equal(f.invocations.notChained, before.notChained, 'no hand-back');
      assert.equal(f.invocations.count - before.count, 2, "a's invocation, then b's");
    } finally {
      await rt.shutdown();
    }
  });

  it('not a task one of whose producers is not in flight (it waits for its own argument)', async () => {
    // pathLeaf is not chained: pathAdd(z, 1) cannot follow z and waits, not in flight, until z answers.
    const zDone = gate();
    const f = scriptedBackend(
      async (env) => {
        if (env.fn === 'pathLeaf') await zDone.opened;
      },
      undefined,
      { chains: (fn) => fn !== 'pathLeaf' },
    );
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      const z = rt.remote(pathLeaf, 1);
      const waiting = rt.remote(pathAdd, z, 1);
      const b = rt.remote(pathAdd, 2, 3);
      const d = rt.remote(pathAdd, b, waiting);
      await turns(3);
      assert.deepEqual(
        f.handed.map((h) => h.taskId),
        [z.id, b.id],
        'd waits: one of its producers is not in flight',
      );
      zDone.open();
      assert.equal(await rt.get(d), 7);
      assert.equal(f.invocations.notChained, 0, 'nothing was handed over that its invoker had to hand back');
      assert.equal(f.handed.filter((h) => h.taskId === d.id).length, 1, 'd was handed over once');
      assert.equal(f.invoked.length, 4);
    } finally {
      await rt.shutdown();
    }
  });

  it('names a producer once in after when the argument list repeats its ref', async () => {
    const f = scriptedBackend(undefined, undefined, chainAll);
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      const a = rt.remote(pathLeaf, 3);
      const twice = rt.remote(pathAdd, a, a);
      assert.equal(await rt.get(twice), 6);
      assert.deepEqual(f.handed.find((h) => h.taskId === twice.id)?.after, [a.id], 'the wire format refuses an id named twice');
      assert.equal(f.invocations.followers, 1);
    } finally {
      await rt.shutdown();
    }
  });

  it('not a dependent already handed over through another producer (a diamond): each task runs once', async () => {
    const f = scriptedBackend(
      (env) => {
        if (env.fn === 'pathLeaf' && env.attempt === undefined) throw crashed(env);
      },
      undefined,
      chainAll,
    );
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      const a = rt.remote(pathLeaf, 1);
      const b = rt.remote(pathAdd, a, 10);
      const c = rt.remote(pathAdd, a, 100);
      const d = rt.remote(pathAdd, b, c);
      assert.equal(await rt.get(d), 112);
      // a crashed: b, c and d were handed back; a's retry took them along, d once (after b and c).
      assert.deepEqual(
        f.invoked.map((i) => i.taskId),
        [a.id, a.id, b.id, c.id, d.id],
      );
      assert.equal(f.invocations.followers, 3);
    } finally {
      await rt.shutdown();
    }
  });

  /**
   * A producer `a` dispatched when its own argument `z` (a task the invoker does not chain, held
   * at a gate) is ready, with room to spare: tasks submitted onto `a` before that wait, and
   * `a`'s dispatch looks at them.
   */
  async function waitingProducer(options = {}) {
    const held = gate();
    const f = scriptedBackend(
      async (env) => {
        if (env.fn === 'pathLeaf') await held.opened;
      },
      undefined,
      { chains: (fn) => fn !== 'pathLeaf' },
    );
    const rt = new Runtime({ ...fast, ...options }, { backend: f.backend });
    await rt.ready();
    const z = rt.remote(pathLeaf, 4);
    const a = rt.remote(pathAdd, z, 0);
    return { f, rt, z, a, held };
  }

  it('not a waiting dependent that was cancelled: it never runs, its producer does', async () => {
    const { f, rt, z, a, held } = await waitingProducer();
    try {
      const b = rt.remote(pathAdd, a, 1);
      const c = rt.remote(pathAdd, a, 2);
      rt.cancel(b);
      await assert.rejects(rt.get(b), TaskCancelledError);
      held.open();
      assert.equal(await rt.get(c), 6);
      assert.deepEqual(
        f.invoked.map((i) => i.taskId),
        [z.id, a.id, c.id],
      );
      assert.equal(f.invocations.followers, 1, 'c followed a');
    } finally {
      await rt.shutdown();
    }
  });

  it('not a dependent whose large argument list is still being stored: it runs with its arguments once they are', async () => {
    const { f, rt, a, held } = await waitingProducer({ inlineThresholdBytes: 256 });
    // The upload of the dependent's argument list waits until the test lets it through.
    const stored = gate();
    const put = f.store.put.bind(f.store);
    f.store.put = async (key, bytes) => {
      if (key.endsWith('.args')) await stored.opened;
      return put(key, bytes);
    };
    try {
      const b = rt.remote(pathConcat, 'y'.repeat(1000), a);
      const c = rt.remote(pathAdd, a, 2);
      await turns(3);
      held.open();
      assert.equal(await rt.get(c), 6);
      assert.equal(f.invocations.followers, 1, 'c followed a');
      assert.equal(
        f.handed.find((h) => h.taskId === b.id),
        undefined,
        'b is not handed over before its arguments are stored',
      );
      stored.open();
      assert.equal(await rt.get(b), 1004);
      assert.deepEqual(
        f.handed.filter((h) => h.taskId === b.id).map((h) => h.after),
        [undefined],
      );
    } finally {
      await rt.shutdown();
    }
  });
});

describe('a follower handed back (NOT_CHAINED)', () => {
  it('after its producers succeeded (its worker did not start it): it is dispatched again and runs once', async () => {
    let follower = '';
    const f = scriptedBackend(
      (env, nth) => {
        if (env.taskId === follower && nth === 1) throw NOT_CHAINED;
      },
      undefined,
      chainAll,
    );
    const rt = new Runtime(fast, { backend: f.backend });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    try {
      await rt.ready();
      const a = rt.remote(pathLeaf, 2);
      const b = rt.remote(pathLeaf, 3);
      const s = rt.remote(pathAdd, a, b);
      follower = s.id;
      assert.equal(await rt.get(s), 5);
      assert.deepEqual(
        f.handed.filter((h) => h.taskId === s.id).map((h) => h.after),
        [[a.id, b.id], undefined],
        'handed over as a follower, then on its own',
      );
      const of = (type: VolleyEvent['type']) => events.filter((e) => e.type === type && 'taskId' in e && e.taskId === s.id);
      assert.equal(of('dispatched').length, 1, 'the hand-back was not a run');
      assert.deepEqual(
        of('finished').map((e) => (e as { outcome: string }).outcome),
        ['ok'],
      );
    } finally {
      await rt.shutdown();
    }
  });

  it('while a producer still runs (it went in another invocation): it waits for it, and runs once even with tasks queued ahead of it', async () => {
    const yHeld = gate();
    const qHeld = gate();
    let y = '';
    const f = scriptedBackend(
      async (env) => {
        if (env.taskId === y) await yHeld.opened;
        if (env.fn === 'pathLen') await qHeld.opened;
      },
      undefined,
      { chains: () => true, batch: 1 },
    );
    const rt = new Runtime({ ...fast, maxConcurrency: 2 }, { backend: f.backend });
    try {
      await rt.ready();
      const yRef = rt.remote(pathLeaf, 3);
      y = yRef.id;
      // s follows y but goes in an invocation of its own: handed back at once, while y runs.
      const s = rt.remote(pathAdd, yRef, 1);
      const q = [rt.remote(pathLen, 'a'), rt.remote(pathLen, 'bb')];
      await turns(3);
      assert.equal(f.invocations.notChained, 1);
      yHeld.open();
      await turns(3);
      qHeld.open();
      assert.equal(await rt.get(s), 4);
      assert.deepEqual(await rt.get(q), [1, 2]);
      assert.equal(f.invoked.filter((i) => i.taskId === s.id).length, 1, 's ran once');
      assert.equal(f.invocations.peak, 2);
    } finally {
      await rt.shutdown();
    }
  });

  it('a follower that never ran has no dispatch time in its finished event (its producer failed for good)', async () => {
    const f = scriptedBackend(undefined, undefined, chainAll);
    const rt = new Runtime(fast, { backend: f.backend });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    try {
      await rt.ready();
      const bad = rt.remote(pathAdd, -1, 2);
      const next = rt.remote(pathAdd, bad, 1);
      await assert.rejects(rt.get(next), DependencyError);
      assert.deepEqual(f.handed.find((h) => h.taskId === next.id)?.after, [bad.id], 'next was handed over as a follower');
      const fin = events.filter((e) => e.type === 'finished' && e.taskId === next.id) as Array<Extract<VolleyEvent, { type: 'finished' }>>;
      assert.equal(fin.length, 1);
      assert.equal(fin[0]!.outcome, 'dependency');
      assert.equal(fin[0]!.dispatchedAt, undefined);
      assert.equal(events.filter((e) => e.type === 'dispatched' && e.taskId === next.id).length, 0);
    } finally {
      await rt.shutdown();
    }
  });
});

describe('an envelope exactly at the inline budget', () => {
  it('is invoked at once, and a dependent submitted with it follows it', async () => {
    const s = 'z'.repeat(300);
    // The inline bytes of pathLen(s)'s envelope, measured on a first runtime.
    const probe = scriptedBackend(undefined, undefined, chainAll);
    const rt0 = new Runtime(fast, { backend: probe.backend });
    await rt0.get(rt0.remote(pathLen, s));
    await rt0.shutdown();
    const bytes = inlineBytes(probe.handed[0]!.env);

    // inlineBudget(limit) = limit / 2: a budget of exactly those bytes.
    const f = scriptedBackend(undefined, 2 * bytes, chainAll);
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      const a = rt.remote(pathLen, s);
      const b = rt.remote(pathAdd, a, 1);
      assert.equal(await rt.get(b), 301);
      assert.equal(inlineBytes(f.handed[0]!.env), bytes, 'the envelope went as it was, inline');
      assert.equal(f.invocations.followers, 1);
      assert.equal(f.invocations.count, 1);
    } finally {
      await rt.shutdown();
    }
  });
});

describe('the answer of a run cancelled while it ran', () => {
  it('a crash is not retried and emits no retrying event', async () => {
    const held = gate();
    let reached = false;
    const f = scriptedBackend(async (env) => {
      reached = true;
      await held.opened;
      throw crashed(env);
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const types: string[] = [];
    rt.onEvent((e) => types.push(e.type));
    try {
      const r = rt.remote(pathLeaf, 1);
      while (!reached) await turns(1);
      rt.cancel(r);
      await assert.rejects(rt.get(r), (e: unknown) => e instanceof TaskCancelledError && /while it ran$/.test(e.message));
      held.open();
      await turns(10);
      assert.equal(rt.faultCounts.retries, 0);
      assert.deepEqual(types, ['submitted', 'dispatched', 'finished']);
      assert.deepEqual(f.fns(), ['pathLeaf#1']);
    } finally {
      await rt.shutdown();
    }
  });
});

/** Gets a child's value: blocked in get (not counted against maxConcurrency) until the child ends. */
const pathGets = remote(async function pathGets(x: number): Promise<number> {
  return (await get(pathHeld.remote(x))) + 1;
});
const heldRuns: Array<() => void> = [];
const pathHeld = remote(async function pathHeld(x: number): Promise<number> {
  await new Promise<void>((r) => heldRuns.push(r));
  return x;
});

/**
 * The embedded runtime's worker side in this process: each task's ThreadSession talks to the
 * runtime's host directly (as the pool forwards a thread's messages). A forced cancel stops
 * the run as the pool's does (it terminates the thread): its invoke() rejects at once.
 */
function threaded() {
  const store = new MemoryStore();
  let host: TaskHost | undefined;
  const started: string[] = [];
  const stops = new Map<string, (e: unknown) => void>();
  const link = hostLink(store, () => host);
  const backend: Backend = {
    name: 'threaded',
    keyPrefix: 'volley/',
    maxConcurrency: 100,
    store,
    invoker: {
      serve(h: TaskHost) {
        host = h;
      },
      invoke(env: TaskEnvelope): Promise<ResultEnvelope> {
        started.push(env.fn);
        return new Promise((resolve, reject) => {
          stops.set(env.taskId, reject);
          executeTask(structuredClone(env), { store, keyPrefix: 'volley/', session: (e) => new ThreadSession(e, link) }).then(resolve, reject);
        });
      },
      cancel(taskId: string, force: boolean) {
        if (force) stops.get(taskId)?.(new TaskCancelledError('', taskId, 'and its worker stopped'));
      },
      async close() {},
    },
  };
  return { backend, started };
}

describe('a run that ends while blocked in get', () => {
  it('does not give back its slot twice: with maxConcurrency 1, nothing else starts while its child holds the slot', async () => {
    const t = threaded();
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: t.backend });
    try {
      const parent = rt.remote(pathGets, 1);
      // The parent blocks in get and gives its slot to its child, which is held.
      while (heldRuns.length === 0) await turns(1);
      assert.deepEqual(t.started, ['pathGets', 'pathHeld']);
      rt.cancel(parent, { force: true, recursive: false });
      await assert.rejects(rt.get(parent), TaskCancelledError);
      const other = rt.remote(pathLeaf, 7);
      await turns(10);
      assert.deepEqual(t.started, ['pathGets', 'pathHeld'], 'the child still holds the one slot');
      heldRuns.shift()!();
      assert.equal(await rt.get(other), 7);
      assert.deepEqual(t.started, ['pathGets', 'pathHeld', 'pathLeaf']);
    } finally {
      await rt.shutdown();
    }
  });
});
