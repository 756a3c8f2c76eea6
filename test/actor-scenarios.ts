/**
 * Actor scenarios every target must pass, written once: `test/local` runs them on the
 * embedded runtime (instances in worker threads), the emulator tier on serverless-offline +
 * s3rver (state in the bucket, one invocation per call).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ActorDiedError, TaskError, UsageError, kill, type Runtime } from 'volley';
import { Accumulator, Counter } from './fixtures/actors.js';
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
}
