/**
 * The order in which the orchestrator hands queued tasks over: a task whose last argument just
 * became ready goes before tasks queued earlier that waited for nothing, and the room a
 * handover of results frees goes first to the dependents those results made ready, with room
 * left to chain the next level behind them. Against an in-process invoker that hands results
 * over as the embedded pool does (`invokeThen`: every result of one message synchronously,
 * before it takes more work; see sdk/backend.ts) and the scripted backend. No clock decides:
 * the test says when results arrive.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { remote, Runtime } from 'volley';
import { NOT_CHAINED, type Backend, type InvokeCallback } from '../../sdk/backend.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import type { ResultEnvelope, TaskEnvelope } from '../../sdk/protocol.js';
import { executeTask } from '../../sdk/worker/execute.js';
import { fast, scriptedBackend } from '../fakes/scripted-backend.js';

const orderLeaf = remote(function orderLeaf(x: number): number {
  return x;
});
const orderAdd = remote(function orderAdd(a: number, b: number): number {
  return a + b;
});

/**
 * An invoker that holds what it is given until the test calls `answer()`, which runs every held
 * task in order, as one worker runs its batch (a follower takes its producers' answers from
 * earlier in the same batch, or is handed back NOT_CHAINED), and then hands all the results
 * over synchronously, one callback after another, as the pool does with a worker's message.
 */
function handoverBackend(maxConcurrency: number) {
  const store = new MemoryStore();
  let held: Array<{ env: TaskEnvelope; after?: readonly string[]; done: InvokeCallback }> = [];
  const handed: Array<{ taskId: string; after?: readonly string[] }> = [];
  let runs = 0;
  const backend: Backend = {
    name: 'handover',
    keyPrefix: 'volley/',
    maxConcurrency,
    store,
    invoker: {
      invoke: () => Promise.reject(new Error('invokeThen only')),
      invokeThen(env, o, done) {
        handed.push({ taskId: env.taskId, ...(o.after ? { after: o.after } : {}) });
        held.push({ env, after: o.after, done });
      },
      chains: () => true,
      async close() {},
    },
  };
  const answer = async (): Promise<void> => {
    const batch = held;
    held = [];
    const answers = new Map<string, ResultEnvelope>();
    const out: Array<[InvokeCallback, ResultEnvelope | undefined]> = [];
    for (const t of batch) {
      let env = t.env;
      if (t.after) {
        const deps = { ...env.deps };
        const ok = t.after.every((id) => {
          const r = answers.get(id);
          if (r?.kind !== 'value') return false;
          deps[id] = { kind: 'inline', bytes: r.bytes };
          return true;
        });
        if (!ok) {
          out.push([t.done, undefined]);
          continue;
        }
        env = { ...env, deps };
      }
      runs++;
      const r = await executeTask(structuredClone(env), { store, keyPrefix: 'volley/' });
      answers.set(env.taskId, r);
      out.push([t.done, r]);
    }
    for (const [done, r] of out) {
      if (r) done(r);
      else queueMicrotask(() => done(undefined, NOT_CHAINED));
    }
  };
  return { backend, answer, handed, held: () => held.map((t) => t.env.taskId), runs: () => runs };
}

describe('dispatch order', () => {
  it('a task whose argument just became ready goes out before tasks queued earlier that waited for nothing', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: f.backend });
    try {
      await rt.ready();
      const a = rt.remote(orderLeaf, 1);
      const b = rt.remote(orderLeaf, 2);
      const c = rt.remote(orderLeaf, 3);
      const d = rt.remote(orderAdd, a, a);
      assert.deepEqual(await rt.get([a, b, c, d]), [1, 2, 3, 2]);
      assert.deepEqual(
        f.invoked.map((i) => i.taskId),
        [a.id, d.id, b.id, c.id],
      );
    } finally {
      await rt.shutdown();
    }
  });

  it('at maxConcurrency, the room one handover of results frees goes to the dependents they made ready, and the next level follows them', async () => {
    const f = handoverBackend(4);
    const rt = new Runtime({ ...fast, maxConcurrency: 4 }, { backend: f.backend });
    try {
      await rt.ready();
      const l = [1, 2, 3, 4, 5, 6, 7, 8].map((x) => rt.remote(orderLeaf, x));
      const s12 = rt.remote(orderAdd, l[0]!, l[1]!);
      const s34 = rt.remote(orderAdd, l[2]!, l[3]!);
      const top = rt.remote(orderAdd, s12, s34);
      const total = rt.get(top);
      assert.deepEqual(f.held(), [l[0]!.id, l[1]!.id, l[2]!.id, l[3]!.id], 'maxConcurrency tasks handed over');
      await f.answer();
      await Promise.resolve();
      // The four results freed four places: the two sums they made ready, the sum of those two
      // following them in the same batch, then one more leaf.
      assert.deepEqual(f.held(), [s12.id, s34.id, top.id, l[4]!.id]);
      assert.deepEqual(f.handed.find((h) => h.taskId === top.id)?.after, [s12.id, s34.id]);
      while (f.held().length > 0) await f.answer();
      assert.equal(await total, 10);
      assert.equal(f.runs(), 11, 'each task ran once');
    } finally {
      await rt.shutdown();
    }
  });
});
