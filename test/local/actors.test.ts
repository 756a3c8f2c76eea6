import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ActorDiedError, ActorStateError, Matrix, TaskError, UsageError, WorkerCrashedError, get, getActor, init, kill, remote, shutdown } from 'volley';
import { Accumulator, Counter, threadOf } from '../fixtures/actors.js';
import { add, inc, makeMatrix } from '../fixtures/tasks.js';

async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(
    (v) => assert.fail(`expected a failure, got ${JSON.stringify(v)}`),
    (e: Error) => e,
  );
}

describe('actors on the embedded runtime', () => {
  before(async () => {
    await init({ local: { maxWorkers: 12 } });
  });
  after(async () => {
    await shutdown();
  });

  it('runs many calls from one driver one at a time, in submission order, sharing state', async () => {
    const c = Counter.remote(10);
    // Later calls are quicker than earlier ones: only ordering keeps the sums right.
    const refs = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? c.addLater.remote(i, 20 - (i % 20)) : c.add.remote(i)));
    const sums = await get(refs);
    let s = 10;
    assert.deepEqual(
      sums,
      refs.map((_, i) => (s += i)),
    );
    assert.deepEqual(
      await get(c.history.remote()),
      refs.map((_, i) => `+${i}`),
    );
    kill(c);
  });

  it('holds the instance in one worker thread that runs no ordinary task', async () => {
    const c = Counter.remote(0);
    const places = await get(Array.from({ length: 10 }, () => c.where.remote()));
    assert.equal(new Set(places).size, 1);
    const taskThreads = await get(Array.from({ length: 40 }, () => threadOf.remote()));
    assert.ok(!taskThreads.includes(places[0]!), `a task ran on the actor's thread ${places[0]}`);
    kill(c);
  });

  it('takes refs as arguments, and its refs feed tasks and other actors', async () => {
    const c = Counter.remote(0);
    const five = c.add.remote(inc.remote(4));
    const fifteen = add.remote(five, 10);
    const d = Counter.remote(100);
    assert.equal(await get(d.add.remote(fifteen)), 115);
    assert.equal(await get(c.read.remote()), 5);
    kill(c);
    kill(d);
  });

  it('accumulates matrices pushed by parallel tasks (a parameter server)', async () => {
    const acc = Accumulator.remote(20, 20);
    const parts = [1, 2, 3, 4].map((seed) => makeMatrix.remote(20, seed));
    const counts = await get(parts.map((p) => acc.push.remote(p)));
    assert.deepEqual(counts, [1, 2, 3, 4]);
    const total = await get(acc.total.remote());
    const expected = (await get(parts)).reduce((a, b) => a.add(b), new Matrix(20, 20));
    assert.deepEqual(total.data, expected.data);
    kill(acc);
  });

  it('a method that throws fails its call with a TaskError; the actor and its state go on', async () => {
    const c = Counter.remote(1);
    const err = await failure(get(c.addThenThrow.remote(5)));
    assert.ok(err instanceof TaskError && err.fault === 'user', String(err));
    assert.match(err.message, /refused after adding 5/);
    assert.equal(await get(c.add.remote(1)), 7);
    kill(c);
  });

  it('a constructor that throws fails every later call with ActorDiedError caused by it', async () => {
    const c = Counter.remote(-1);
    for (const p of [get(c.add.remote(1)), get(c.read.remote())]) {
      const err = await failure(p);
      assert.ok(err instanceof ActorDiedError, String(err));
      assert.ok(err.cause instanceof TaskError && /cannot start below zero/.test(err.cause.message), String(err.cause));
    }
  });

  it('a crash fails the running call and, without maxRestarts, every later one with ActorDiedError', async () => {
    const c = Counter.remote(3);
    assert.equal(await get(c.add.remote(1)), 4);
    const crashed = c.exitWorker.remote(9);
    const later = c.read.remote();
    const err = await failure(get(crashed));
    assert.ok(err instanceof ActorDiedError && err.cause instanceof WorkerCrashedError, String(err));
    assert.match(String(err.cause.message), /code 9/);
    const err2 = await failure(get(later));
    assert.ok(err2 instanceof ActorDiedError, String(err2));
    // Ordinary tasks are not affected.
    assert.equal(await get(inc.remote(1)), 2);
  });

  it('with maxRestarts, a crashed actor restarts from its constructor until the restarts run out', async () => {
    const c = Counter.options({ maxRestarts: 1 }).remote(3);
    assert.equal(await get(c.add.remote(1)), 4);
    const where1 = await get(c.where.remote());
    assert.ok((await failure(get(c.exitWorker.remote(1)))) instanceof ActorDiedError);
    assert.equal(await get(c.read.remote()), 3, "the state is the constructor's again");
    assert.notEqual(await get(c.where.remote()), where1, 'a new worker holds it');
    assert.equal(await get(c.add.remote(2)), 5);
    assert.ok((await failure(get(c.exitWorker.remote(1)))) instanceof ActorDiedError);
    assert.ok((await failure(get(c.read.remote()))) instanceof ActorDiedError, 'no restarts left');
  });

  it('kill() fails calls not yet run with ActorDiedError and frees the name', async () => {
    const c = Counter.options({ name: 'tally' }).remote(0);
    assert.equal(getActor('tally'), c);
    assert.throws(() => Counter.options({ name: 'tally' }).remote(0), UsageError);
    const slow = c.addLater.remote(1, 200);
    const queued = c.add.remote(1);
    await new Promise((r) => setTimeout(r, 50));
    kill(c);
    const [e1, e2] = await Promise.all([failure(get(slow)), failure(get(queued))]);
    assert.ok(e1 instanceof ActorDiedError && e2 instanceof ActorDiedError, `${e1} / ${e2}`);
    assert.match(e2.message, /killed/);
    assert.throws(() => getActor('tally'), UsageError);
    const again = Counter.options({ name: 'tally' }).remote(5);
    assert.equal(await get(getActor<{ read(): number }>('tally').read.remote()), 5);
    kill(again);
  });

  it('named lookup finds the same actor', async () => {
    const c = Counter.options({ name: 'shared' }).remote(0);
    await get(c.add.remote(2));
    const h = getActor<{ add(n: number): number }>('shared');
    assert.equal(await get(h.add.remote(3)), 5);
    assert.throws(() => getActor('nobody'), /no actor named "nobody"/);
    kill(c);
  });

  it('a call that leaves a field that cannot travel fails with ActorStateError; the state is the one before it', async () => {
    const c = Counter.remote(2);
    await get(c.add.remote(1));
    const err = await failure(get(c.keepFunction.remote()));
    assert.ok(err instanceof TaskError && err.remote?.code === 'ACTOR_STATE', String(err));
    assert.match(err.message, /this\.extra/);
    assert.equal(await get(c.add.remote(1)), 4);
    assert.deepEqual(await get(c.history.remote()), ['+1', '+1']);
    kill(c);
  });

  it('an actor class cannot be called or constructed directly, and a handle has only the methods', () => {
    const c = Counter.remote(0);
    assert.deepEqual(Object.keys(c).sort(), ['add', 'addLater', 'addRandom', 'addThenThrow', 'exitWorker', 'hang', 'history', 'keepFunction', 'read', 'where']);
    assert.throws(() => (Counter as unknown as () => void)(), TypeError);
    assert.throws(() => remote(class Counter {}), /two tasks are named "actor:Counter"/);
    kill(c);
  });
});

describe('actor field rule', () => {
  it('is ActorStateError, a SerializationError', () => {
    assert.ok(new ActorStateError('x', 'this.y') instanceof Error);
  });
});
