/**
 * Actor scenarios every target must pass, written once: `test/local` runs them on the
 * embedded runtime (instances in worker threads), the emulator tier on serverless-offline +
 * s3rver (state in the bucket, one invocation per call).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ActorDiedError, TaskError, UsageError, kill, type Runtime } from 'volley';
import { Accumulator, Counter, addSeries, addToNamed, addVia, addViaMany, killActor, passOn, pushDelta, startCounter } from './fixtures/actors.js';
import { add, inc, makeMatrix } from './fixtures/tasks.js';
import { Matrix } from 'volley';

export interface ActorScenarioOptions {
  tier: string;
  /** Starts a runtime on the tier; the scenarios shut it down. */
  start: () => Promise<Runtime>;
  /** How many calls the ordering scenario makes. */
  calls?: number;
  /** A call's timeout for the crash scenarios (a method that never returns stands for a crash on every tier). */
  hangTimeoutMs: number;
}

export async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(
    (v) => assert.fail(`expected a failure, got ${JSON.stringify(v)}`),
    (e: Error) => e,
  );
}

export function defineActorScenarios(o: ActorScenarioOptions): void {
  describe(`actors on ${o.tier}`, () => {
    let rt: Runtime;
    before(async () => {
      rt = await o.start();
    });
    after(async () => {
      await rt?.shutdown();
    });

    it('runs calls one at a time in submission order, sharing state across calls', async () => {
      const n = o.calls ?? 40;
      const c = rt.actor(Counter, 10);
      // Some earlier calls take longer than later ones: only ordering keeps the sums right.
      const refs = Array.from({ length: n }, (_, i) => (i % 4 === 0 ? c.addLater.remote(i, 30) : c.add.remote(i)));
      let s = 10;
      assert.deepEqual(
        await rt.get(refs),
        refs.map((_, i) => (s += i)),
      );
      assert.deepEqual(
        await rt.get(c.history.remote()),
        refs.map((_, i) => `+${i}`),
      );
      kill(c);
    });

    it('takes refs as arguments; its refs feed tasks and other actors', async () => {
      const c = rt.actor(Counter, 0);
      const five = c.add.remote(rt.remote(inc, 4));
      const fifteen = rt.remote(add, five, 10);
      const d = rt.actor(Counter, 100);
      assert.equal(await rt.get(d.add.remote(fifteen)), 115);
      assert.equal(await rt.get(c.read.remote()), 5);
      kill(c);
      kill(d);
    });

    it('accumulates matrices made by parallel tasks (a parameter server)', async () => {
      const acc = rt.actor(Accumulator, 16, 16);
      const parts = [1, 2, 3].map((seed) => rt.remote(makeMatrix, 16, seed));
      assert.deepEqual(await rt.get(parts.map((p) => acc.push.remote(p))), [1, 2, 3]);
      const expected = (await rt.get(parts)).reduce((a, b) => a.add(b), new Matrix(16, 16));
      assert.deepEqual((await rt.get(acc.total.remote())).data, expected.data);
      kill(acc);
    });

    it('a call whose ref argument failed fails without running; the actor goes on', async () => {
      const c = rt.actor(Counter, 1);
      const bad = rt.actor(Counter, -5).read.remote();
      const skipped = c.add.remote(bad as never);
      assert.equal(await rt.get(c.add.remote(1)), 2);
      assert.ok((await failure(rt.get(skipped))) instanceof TaskError);
      kill(c);
    });

    it('a method that throws fails its call with a TaskError; its changes stay and the actor goes on', async () => {
      const c = rt.actor(Counter, 1);
      const err = await failure(rt.get(c.addThenThrow.remote(5)));
      assert.ok(err instanceof TaskError && err.fault === 'user', String(err));
      assert.match(err.message, /refused after adding 5/);
      assert.equal(await rt.get(c.add.remote(1)), 7);
      kill(c);
    });

    it('a constructor that throws fails every later call with ActorDiedError caused by it', async () => {
      const c = rt.actor(Counter, -1);
      for (const p of [rt.get(c.add.remote(1)), rt.get(c.read.remote())]) {
        const err = await failure(p);
        assert.ok(err instanceof ActorDiedError, String(err));
        assert.ok(err.cause instanceof TaskError && /cannot start below zero/.test(err.cause.message), String(err.cause));
      }
    });

    it('a call that leaves a field that cannot travel fails with ActorStateError; the state is the one before it', async () => {
      const c = rt.actor(Counter, 2);
      await rt.get(c.add.remote(1));
      const err = await failure(rt.get(c.keepFunction.remote()));
      assert.ok(err instanceof TaskError && err.remote?.code === 'ACTOR_STATE', String(err));
      assert.match(err.message, /this\.extra/);
      assert.equal(await rt.get(c.add.remote(1)), 4);
      assert.deepEqual(await rt.get(c.history.remote()), ['+1', '+1']);
      kill(c);
    });

    it('a lost instance fails its call with ActorDiedError, and every later one without maxRestarts', async () => {
      const c = rt.actor(Counter.options({ timeoutMs: o.hangTimeoutMs }), 3);
      assert.equal(await rt.get(c.add.remote(1)), 4);
      const lost = c.hang.remote();
      const later = c.read.remote();
      const err = await failure(rt.get(lost));
      assert.ok(err instanceof ActorDiedError && err.cause instanceof TaskError, String(err));
      assert.ok((await failure(rt.get(later))) instanceof ActorDiedError);
      assert.equal(await rt.get(rt.remote(inc, 1)), 2, 'tasks are not affected');
    });

    it('with maxRestarts, the actor restarts from its constructor', async () => {
      const c = rt.actor(Counter.options({ timeoutMs: o.hangTimeoutMs, maxRestarts: 1 }), 3);
      assert.equal(await rt.get(c.add.remote(1)), 4);
      assert.ok((await failure(rt.get(c.hang.remote()))) instanceof ActorDiedError);
      assert.equal(await rt.get(c.read.remote()), 3, "the constructor's state again");
      assert.equal(await rt.get(c.add.remote(2)), 5);
      assert.ok((await failure(rt.get(c.hang.remote()))) instanceof ActorDiedError);
      assert.ok((await failure(rt.get(c.read.remote()))) instanceof ActorDiedError, 'no restarts left');
    });

    it('kill() fails the calls not yet run with ActorDiedError', async () => {
      const c = rt.actor(Counter, 0);
      const slow = c.addLater.remote(1, 300);
      const queued = c.add.remote(1);
      kill(c);
      const err = await failure(rt.get(queued));
      assert.ok(err instanceof ActorDiedError && /killed/.test(err.message), String(err));
      await rt.get(slow).catch(() => undefined);
      assert.throws(() => kill({} as never), UsageError);
    });
  });

  describe(`actor handles in tasks on ${o.tier}`, () => {
    let rt: Runtime;
    before(async () => {
      rt = await o.start();
    });
    after(async () => {
      await rt?.shutdown();
    });

    it('a handle passed to a task (also inside objects and arrays, and on to a nested task) calls the same actor', async () => {
      const c = rt.actor(Counter, 10);
      assert.equal(await rt.get(rt.remote(addVia, c, 5)), 15);
      const d = rt.actor(Counter, 100);
      // Each call's ref is waited for inside the task and passed on to a task there.
      assert.deepEqual(await rt.get(rt.remote(addViaMany, { counters: [c, d] }, 1)), [17, 102]);
      assert.equal(await rt.get(rt.remote(passOn, c, 3)), 19);
      assert.equal(await rt.get(c.read.remote()), 19);
      assert.deepEqual(await rt.get(d.history.remote()), ['+1']);
      kill(c);
      kill(d);
    });

    it("orders each caller's calls as it made them, with none lost or applied twice", async () => {
      const c = rt.actor(Counter, 0);
      const fromTasks = [rt.remote(addSeries, c, 100, 8), rt.remote(addSeries, c, 200, 8)];
      const fromDriver = Array.from({ length: 8 }, (_, i) => c.add.remote(1 + i));
      await rt.get([...fromTasks, ...fromDriver]);
      const log = await rt.get(c.history.remote());
      assert.equal(log.length, 24, log.join(' '));
      for (const base of [0, 100, 200]) {
        const mine = log.filter((e) => Math.floor(Number(e.slice(1)) / 100) * 100 === base);
        assert.deepEqual(
          mine,
          Array.from({ length: 8 }, (_, i) => `+${base + (base === 0 ? 1 : 0) + i}`),
          `the calls of one caller in its order: ${log.join(' ')}`,
        );
      }
      assert.equal(await rt.get(c.read.remote()), 36 + 8 * 100 + 28 + 8 * 200 + 28);
      kill(c);
    });

    it('parallel tasks push matrices into one accumulator (a parameter server); the driver reads the sum', async () => {
      const acc = rt.actor(Accumulator, 8, 8);
      const n = 6;
      const deltas = await rt.get(Array.from({ length: n }, (_, seed) => rt.remote(pushDelta, acc, 8, seed)));
      const expected = deltas.reduce((a, b) => a.add(b), new Matrix(8, 8));
      assert.equal(await rt.get(acc.push.remote(new Matrix(8, 8))), n + 1, 'every push counted once');
      assert.deepEqual((await rt.get(acc.total.remote())).data, expected.data);
      kill(acc);
    });

    it('a named actor is looked up inside a task', async () => {
      const name = `tally-${Math.random().toString(36).slice(2, 8)}`;
      const c = rt.actor(Counter.options({ name }), 1);
      assert.equal(await rt.get(rt.remote(addToNamed, name, 4)), 5);
      assert.equal(await rt.get(c.read.remote()), 5);
      kill(c);
      const err = await failure(rt.get(rt.remote(addToNamed, `nobody-${name}`, 1)));
      assert.ok(err instanceof TaskError, String(err));
    });

    it('an actor started inside a task comes back as a handle the driver calls', async () => {
      const c = await rt.get(rt.remote(startCounter, 41));
      assert.equal(await rt.get(c.add.remote(1)), 43);
      assert.equal(await rt.get(rt.remote(addVia, c, 1)), 44);
      kill(c);
    });

    it('kill() inside a task kills the actor for every caller', async () => {
      const c = rt.actor(Counter, 0);
      assert.equal(await rt.get(c.add.remote(1)), 1);
      assert.equal(await rt.get(rt.remote(killActor, c)), true);
      const err = await failure(rt.get(c.add.remote(1)));
      assert.ok(err instanceof ActorDiedError && /killed/.test(err.message), String(err));
    });
  });
}
