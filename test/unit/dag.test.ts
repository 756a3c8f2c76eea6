/**
 * The orchestrator's failure paths against an in-process backend: tasks run through the real
 * worker-side code, and a script decides which invocation fails and how (a crashed worker, a
 * configuration error, a lost object, a run held until the test releases it). What is asserted
 * is what the program sees: values, errors and their messages, which tasks ran how often.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ConfigError, DependencyError, type ObjectRef, ObjectLostError, ObjectStoreError, Runtime, remote, TaskCancelledError, TaskError, WorkerCrashedError } from 'volley';
import { fast, scriptedBackend, turns } from '../fakes/scripted-backend.js';
import { add, deepSum, describe as describeValue, echo, failIfNegative, filled, inc } from '../fixtures/tasks.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('retries', () => {
  it('runs a task again after its worker crashed, and counts the retry', async () => {
    const f = scriptedBackend((env, nth) => {
      if (env.fn === 'inc' && nth === 1) throw new WorkerCrashedError('inc', env.taskId, 'exit code 137');
    });
    const rt = new Runtime(fast, { backend: f.backend });
    assert.equal(await rt.get(rt.remote(inc, 41)), 42);
    assert.deepEqual(f.fns(), ['inc#1', 'inc#2']);
    assert.equal(rt.faultCounts.retries, 1);
    assert.equal(rt.faultCounts.rebuilds, 0);
    await rt.shutdown();
  });

  it('gives up after maxRetries + 1 runs with the last error, listing every run', async () => {
    const f = scriptedBackend((env) => {
      throw new WorkerCrashedError(env.fn, env.taskId, `exit on run ${env.attempt ?? 1}`);
    });
    const rt = new Runtime(fast, { backend: f.backend });
    await assert.rejects(rt.get(rt.remote(inc.options({ maxRetries: 2 }), 1)), (e: unknown) => {
      assert.ok(e instanceof WorkerCrashedError);
      assert.match(e.message, /\(exit on run 3\) \[after 3 attempts — 1: WorkerCrashedError \(WORKER_CRASHED\); 2: WorkerCrashedError \(WORKER_CRASHED\); 3: WorkerCrashedError \(WORKER_CRASHED\)\]$/);
      assert.deepEqual(
        e.attempts?.map((a) => a.attempt),
        [1, 2, 3],
      );
      return true;
    });
    assert.deepEqual(f.fns(), ['inc#1', 'inc#2', 'inc#3']);
    assert.equal(rt.faultCounts.retries, 2);
    await rt.shutdown();
  });

  it('never retries a configuration error, and an exception only under retryExceptions', async () => {
    const f = scriptedBackend((env) => {
      if (env.fn === 'add') throw new ConfigError('no worker can load module tasks/add.js');
    });
    const rt = new Runtime(fast, { backend: f.backend });
    await assert.rejects(rt.get(rt.remote(add, 1, 2)), (e: unknown) => e instanceof ConfigError && /tasks\/add\.js/.test(e.message));
    await assert.rejects(rt.get(rt.remote(failIfNegative, -1)), (e: unknown) => e instanceof TaskError && e.remote?.name === 'ValidationFailure' && !/attempts/.test(e.message));
    await assert.rejects(rt.get(rt.remote(failIfNegative.options({ retryExceptions: ['ValidationFailure'], maxRetries: 1 }), -2)), (e: unknown) =>
      /\[after 2 attempts — 1: ValidationFailure; 2: ValidationFailure\]$/.test((e as Error).message),
    );
    assert.deepEqual(f.fns(), ['add#1', 'failIfNegative#1', 'failIfNegative#1', 'failIfNegative#2']);
    assert.equal(rt.faultCounts.retries, 1);
    await rt.shutdown();
  });

  it('a task that failed for good fails its dependents, whose errors name it', async () => {
    const f = scriptedBackend((env) => {
      if (env.fn === 'inc') throw new WorkerCrashedError('inc', env.taskId, 'out of memory');
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const a = rt.remote(inc.options({ maxRetries: 0 }), 1);
    const b = rt.remote(add, a, 1);
    const c = rt.remote(add, b, 1);
    await assert.rejects(rt.get(c), (e: unknown) => e instanceof DependencyError && /because inc \(.*\) failed/.test(e.message));
    await assert.rejects(rt.get(b), (e: unknown) => e instanceof DependencyError && e.cause instanceof WorkerCrashedError);
    assert.deepEqual(f.fns(), ['inc#1']);
    await rt.shutdown();
  });
});

describe('lost objects', () => {
  it("a task's stored argument lost from the store is rebuilt by running its producer again", async () => {
    let deleted = false;
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'describeValue' && !deleted) {
        deleted = true;
        const dep = Object.values(env.deps)[0]!;
        assert.equal(dep.kind, 'stored');
        await f.store.delete([(dep as { key: string }).key]);
      }
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.remote(filled, 100, 2);
    assert.equal(await rt.get(rt.remote(describeValue, data)), 'Float64Array(100) sum=200');
    assert.deepEqual(f.fns(), ['filled#1', 'describeValue#1', 'filled#2', 'describeValue#2']);
    assert.equal(rt.faultCounts.rebuilds, 1);
    assert.equal(rt.faultCounts.retries, 0, 'a rebuild is not a retry');
    await rt.shutdown();
  });

  it('a stored result lost before get() reads it is rebuilt for get(); a put() value cannot be', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.remote(filled, 50, 1);
    await rt.wait([data]);
    await f.store.deletePrefix('volley/');
    assert.equal((await rt.get(data)).length, 50);
    assert.deepEqual(f.fns(), ['filled#1', 'filled#2']);

    const big = rt.put(new Float64Array(100));
    await rt.get(rt.remote(describeValue, big));
    await f.store.deletePrefix('volley/');
    await assert.rejects(rt.get(big), (e: unknown) => e instanceof ObjectLostError && /stored by put\(\), so no task can rebuild it/.test(e.message));
    await rt.shutdown();
  });

  it('a lost object is rebuilt at most maxRetries times', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.remote(filled.options({ maxRetries: 1 }), 50, 1);
    await rt.wait([data]);
    await f.store.deletePrefix('volley/');
    await rt.get(data);
    await f.store.deletePrefix('volley/');
    await assert.rejects(rt.get(data), (e: unknown) => e instanceof ObjectLostError && /was already rebuilt 1 time\(s\), its maxRetries/.test(e.message));
    assert.deepEqual(f.fns(), ['filled#1', 'filled#2']);
    const forever = rt.remote(filled.options({ maxRetries: -1 }), 50, 2);
    for (let i = 0; i < 3; i++) {
      await rt.wait([forever]);
      await f.store.deletePrefix('volley/');
      assert.equal((await rt.get(forever))[0], 2, 'maxRetries -1: rebuilt every time');
    }
    await rt.shutdown();
  });

  it('an argument two running tasks both find lost is rebuilt once', async () => {
    let arrived = 0;
    let bothArrived!: () => void;
    const barrier = new Promise<void>((r) => (bothArrived = r));
    let releaseRebuild!: () => void;
    const rebuildHeld = new Promise<void>((r) => (releaseRebuild = r));
    const f = scriptedBackend(async (env, nth) => {
      if (env.fn === 'describeValue' && nth <= 2) {
        // Both runs are out when the object goes; both report it missing.
        if (++arrived === 2) bothArrived();
        await barrier;
        await f.store.delete([(Object.values(env.deps)[0] as { key: string }).key]);
      }
      if (env.fn === 'filled' && nth === 2) await rebuildHeld;
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    let lostReports = 0;
    rt.onEvent((e) => {
      if (e.type === 'retrying' && e.reason === 'argument-lost') lostReports++;
    });
    const data = rt.remote(filled, 100, 2);
    await rt.wait([data]);
    const one = rt.remote(describeValue, data);
    const two = rt.remote(describeValue, data);
    for (let i = 0; i < 1000 && lostReports < 2; i++) await turns(1);
    assert.equal(lostReports, 2, 'both runs reported the argument lost');
    assert.deepEqual(f.fns(), ['filled#1', 'describeValue#1', 'describeValue#1', 'filled#2']);
    assert.equal(rt.faultCounts.rebuilds, 1);
    releaseRebuild();
    assert.deepEqual(await rt.get([one, two]), ['Float64Array(100) sum=200', 'Float64Array(100) sum=200']);
    assert.equal(f.invoked.filter((i) => i.fn === 'filled').length, 2, 'the producer ran again once');
    assert.equal(rt.faultCounts.rebuilds, 1);
    await rt.shutdown();
  });

  it('of two stored arguments, only the lost one is rebuilt', async () => {
    let lostKey: string | undefined;
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'deepSum' && lostKey === undefined) {
        lostKey = (env.deps[Object.keys(env.deps)[1]!] as { key: string }).key;
        await f.store.delete([lostKey]);
      }
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const a = rt.remote(filled, 20, 1);
    const b = rt.remote(filled, 30, 1);
    await rt.wait([a, b], { numReturns: 2 });
    assert.equal(await rt.get(rt.remote(deepSum, { a, b })), 50);
    assert.equal(lostKey?.endsWith(b.id), true);
    assert.deepEqual(
      f.invoked.filter((i) => i.fn === 'filled').map((i) => i.taskId),
      [a.id, b.id, b.id],
    );
    await rt.shutdown();
  });
  it('an inline argument spilled to the store for want of room is written again when lost, not rebuilt', async () => {
    let spilledKey: string | undefined;
    const f = scriptedBackend(async (env, nth) => {
      if (env.fn === 'describeValue' && nth === 1) {
        const dep = Object.values(env.deps)[0]!;
        assert.equal(dep.kind, 'stored', 'the 1.6 kB value does not fit a 2 kB payload beside the rest');
        spilledKey = (dep as { key: string }).key;
        await f.store.delete([spilledKey]);
      }
    }, 2048);
    const rt = new Runtime(fast, { backend: f.backend });
    const data = rt.remote(filled, 200, 1);
    assert.equal(await rt.get(rt.remote(describeValue, data)), 'Float64Array(200) sum=200');
    assert.equal(spilledKey?.endsWith(data.id), true);
    assert.deepEqual(f.fns(), ['filled#1', 'describeValue#1', 'describeValue#2'], 'the producer does not run again');
    assert.equal(rt.faultCounts.rebuilds, 0);
    assert.equal(rt.faultCounts.retries, 0);
    await rt.shutdown();
  });

  it("a lost result whose producer's stored argument was freed meanwhile rebuilds that argument first", async () => {
    let argKey: string | undefined;
    const f = scriptedBackend((env) => {
      if (env.fn === 'echo') argKey ??= (Object.values(env.deps)[0] as { key: string }).key;
    });
    const present = (key: string) => {
      try {
        f.store.getSync(key);
        return true;
      } catch {
        return false;
      }
    };
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    let data: ObjectRef<Float64Array> | undefined = rt.remote(filled, 100, 3);
    const copy = rt.remote(echo, data);
    await rt.wait([copy]);
    data = undefined;
    // The program dropped its ref and the task that needed it is done: the argument is freed.
    for (let i = 0; i < 50 && present(argKey!); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 0));
      await turns(2);
    }
    assert.equal(present(argKey!), false, 'the argument was freed');
    await f.store.deletePrefix('volley/');
    assert.equal(
      ((await rt.get(copy)) as Float64Array).reduce((a, b) => a + b, 0),
      300,
    );
    assert.deepEqual(f.fns(), ['filled#1', 'echo#1', 'filled#2', 'echo#2'], 'the argument is rebuilt before the task runs again, not after a failed run');
    assert.equal(rt.faultCounts.rebuilds, 2);
    await rt.shutdown();
  });
});

describe('cancel', () => {
  it('a task waiting for its argument is cancelled before it starts; a running one is told to stop', async () => {
    const held: Array<() => void> = [];
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'inc') await new Promise<void>((r) => held.push(r));
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const running = rt.remote(inc, 1);
    const waiting = rt.remote(add, running, 1);
    const forced = rt.remote(inc, 2);
    await turns();
    assert.equal(held.length, 2);
    rt.cancel(waiting);
    await assert.rejects(rt.get(waiting), (e: unknown) => e instanceof TaskCancelledError && /was cancelled before it started$/.test(e.message));
    rt.cancel(running);
    await assert.rejects(rt.get(running), (e: unknown) => e instanceof TaskCancelledError && /was cancelled while it ran$/.test(e.message));
    rt.cancel(forced, { force: true });
    await assert.rejects(rt.get(forced), (e: unknown) => e instanceof TaskCancelledError && /was cancelled and its worker stopped$/.test(e.message));
    assert.deepEqual(f.cancels, [
      [running.id, false],
      [forced.id, true],
    ]);
    for (const r of held) r();
    await turns();
    await assert.rejects(rt.get(running), TaskCancelledError, 'a late answer does not undo the cancel');
    assert.deepEqual(f.fns(), ['inc#1', 'inc#1'], 'add never ran');
    rt.cancel(running);
    assert.equal(f.cancels.length, 2, 'cancelling a finished task does nothing');
    await rt.shutdown();
  });

  it('a second cancel while the first run is still out does not ask the invoker again', async () => {
    const held: Array<() => void> = [];
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'inc') await new Promise<void>((r) => held.push(r));
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const running = rt.remote(inc, 1);
    await turns();
    assert.equal(held.length, 1);
    rt.cancel(running);
    rt.cancel(running, { force: true });
    await assert.rejects(rt.get(running), (e: unknown) => e instanceof TaskCancelledError && /was cancelled while it ran$/.test(e.message));
    assert.deepEqual(f.cancels, [[running.id, false]], 'the task has ended: its worker is not stopped');
    for (const r of held) r();
    await rt.shutdown();
  });

  it('a cancelled task whose argument then fails stays cancelled and finishes once', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'inc') {
        await held;
        throw new WorkerCrashedError('inc', env.taskId, 'out of memory');
      }
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const finished: string[] = [];
    rt.onEvent((e) => {
      if (e.type === 'finished') finished.push(e.taskId);
    });
    const running = rt.remote(inc.options({ maxRetries: 0 }), 1);
    const waiting = rt.remote(add, running, 1);
    await turns();
    rt.cancel(waiting);
    release();
    await assert.rejects(rt.get(running), WorkerCrashedError);
    await assert.rejects(rt.get(waiting), (e: unknown) => e instanceof TaskCancelledError && /before it started$/.test(e.message));
    assert.equal(finished.filter((id) => id === waiting.id).length, 1, 'one finished event, from the cancel');
    assert.deepEqual(f.fns(), ['inc#1']);
    await rt.shutdown();
  });

  it('cancels the tasks a task started, unless told not to recurse', async () => {
    const held: Array<() => void> = [];
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'inc') await new Promise<void>((r) => held.push(r));
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const parent = rt.remote(inc, 1);
    const child = rt.remote(inc, 2);
    rt.addChild(parent.id, child);
    const grandchild = rt.remote(inc, 5);
    rt.addChild(child.id, grandchild);
    const parent2 = rt.remote(inc, 3);
    const child2 = rt.remote(inc, 4);
    rt.addChild(parent2.id, child2);
    assert.deepEqual(rt.childrenOf(parent.id), [child.id]);
    await turns();
    rt.cancel(parent);
    await assert.rejects(rt.get(child), TaskCancelledError);
    await assert.rejects(rt.get(grandchild), TaskCancelledError, 'and the tasks those started');
    rt.cancel(parent2, { recursive: false });
    await assert.rejects(rt.get(parent2), TaskCancelledError);
    for (const r of held.splice(0)) r();
    assert.equal(await rt.get(child2), 5, 'not cancelled');
    await rt.shutdown();
  });
});

describe('stats', () => {
  it("adds up every run's timing per function", async () => {
    const f = scriptedBackend();
    const rt = new Runtime(fast, { backend: f.backend });
    await rt.get([rt.remote(inc, 1), rt.remote(inc, 2), rt.remote(add, 1, 2)]);
    const stats = rt.stats();
    assert.equal(stats.get('inc')?.tasks, 2);
    assert.equal(stats.get('add')?.tasks, 1);
    stats.get('inc')!.tasks = 99;
    assert.equal(rt.stats().get('inc')?.tasks, 2, 'a copy');
    await rt.shutdown();
  });
});

describe('runs that end late, rebuilds and their events', () => {
  it('a run that fails after shutdown is not retried', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const f = scriptedBackend(async (env) => {
      await held;
      throw new WorkerCrashedError(env.fn, env.taskId, 'exit code 137');
    });
    const rt = new Runtime(fast, { backend: f.backend });
    let retrying = 0;
    rt.onEvent((e) => {
      if (e.type === 'retrying') retrying++;
    });
    const ref = rt.remote(inc, 1);
    await turns();
    const value = rt.get(ref);
    await rt.shutdown();
    await assert.rejects(value, /the runtime was shut down before this task finished/);
    release();
    await turns();
    assert.equal(rt.faultCounts.retries, 0);
    assert.equal(retrying, 0);
    assert.deepEqual(f.fns(), ['inc#1']);
  });

  it("a retried task whose next run cannot start reports that run, not the earlier run's worker and timing", async () => {
    const f = scriptedBackend((_env, nth) => {
      if (nth === 2) throw new ConfigError('no worker can load module tasks/failIfNegative.js');
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const events: Array<Record<string, unknown>> = [];
    rt.onEvent((e) => {
      if (e.type === 'finished' || e.type === 'retrying') events.push(e as never);
    });
    const ref = rt.remote(failIfNegative.options({ retryExceptions: ['ValidationFailure'], maxRetries: 1 }), -1);
    await assert.rejects(rt.get(ref), ConfigError);
    assert.deepEqual(
      events.map((e) => e.type),
      ['retrying', 'finished'],
    );
    const [retrying, finished] = events;
    assert.equal(typeof (retrying!.timing as { runMs: number }).runMs, 'number', 'the first run answered with its timing');
    assert.equal(finished!.attempt, 2);
    assert.equal(finished!.timing, undefined);
    assert.equal(finished!.startedAt, undefined);
    assert.equal(typeof finished!.dispatchedAt, 'number');
    await rt.shutdown();
  });

  it('a lost result whose task had stored arguments cannot be rebuilt, and says why', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const copy = rt.remote(echo, new Float64Array(100).fill(1));
    await rt.wait([copy]);
    await f.store.deletePrefix('volley/');
    await assert.rejects(rt.get(copy), (e: unknown) => {
      assert.ok(e instanceof ObjectLostError);
      assert.match(e.message, new RegExp(`its task echo \\(${copy.id}\\) cannot run again: its arguments were larger than inlineThresholdBytes and were freed when it finished`));
      return true;
    });
    assert.deepEqual(f.fns(), ['echo#1']);
    await rt.shutdown();
  });

  it('each rebuild is an event naming the task and how many times it was rebuilt', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const rebuilds: Array<[string, string, number]> = [];
    rt.onEvent((e) => {
      if (e.type === 'rebuilding') rebuilds.push([e.taskId, e.fn, e.rebuild]);
    });
    const data = rt.remote(filled, 50, 1);
    for (let i = 0; i < 2; i++) {
      await rt.wait([data]);
      await f.store.deletePrefix('volley/');
      assert.equal((await rt.get(data)).length, 50);
    }
    assert.deepEqual(rebuilds, [
      [data.id, 'filled', 1],
      [data.id, 'filled', 2],
    ]);
    await rt.shutdown();
  });

  it("a rebuild's runs have maxRetries of their own: the first run's retries do not count", async () => {
    const f = scriptedBackend((env, nth) => {
      if (env.fn === 'filled' && (nth === 1 || nth === 3)) throw new WorkerCrashedError('filled', env.taskId, `exit on run ${nth}`);
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.remote(filled.options({ maxRetries: 1 }), 50, 1);
    await rt.wait([data]);
    await f.store.deletePrefix('volley/');
    assert.equal((await rt.get(data))[0], 1);
    assert.deepEqual(f.fns(), ['filled#1', 'filled#2', 'filled#3', 'filled#4']);
    assert.equal(rt.faultCounts.retries, 2);
    await rt.shutdown();
  });
});

/** Whether the store holds `key`. */
function present(store: { getSync(key: string): unknown }, key: string): boolean {
  try {
    store.getSync(key);
    return true;
  } catch {
    return false;
  }
}

/** Waits until the program's ref `ref` is garbage-collected and the runtime has seen it go (its FinalizationRegistry ran). */
async function collected(ref: WeakRef<object>): Promise<void> {
  let seen = false;
  const registry = new FinalizationRegistry(() => (seen = true));
  // No local variable may keep the target alive across the waits below.
  registry.register(ref.deref()!, '');
  for (let i = 0; i < 50 && !seen; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.ok(seen, 'the ref was collected');
  // The runtime's own registry was told in the same collection; let its callback run too.
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
}

/** A task whose own code throws a store error naming `key` (as a task reading the store itself would). */
const throwsMissing = remote(function throwsMissing(_value: unknown, key: string): never {
  throw new ObjectStoreError(`the task looked for ${key} and did not find it`, key, undefined, 'OBJECT_MISSING');
});

describe('lost objects: who is rebuilt, who is not', () => {
  it('a spilled value two running tasks both find lost is written again for both, even when the first waits in the queue meanwhile', async () => {
    let arrived = 0;
    let bothArrived!: () => void;
    const barrier = new Promise<void>((r) => (bothArrived = r));
    let releaseBusy!: () => void;
    const busyHeld = new Promise<void>((r) => (releaseBusy = r));
    const f = scriptedBackend(async (env, nth) => {
      if (env.fn === 'describeValue' && nth <= 2) {
        // Both runs are out with the spilled copy when it goes; both report it missing.
        if (++arrived === 2) bothArrived();
        await barrier;
        await f.store.delete([(Object.values(env.deps)[0] as { key: string }).key]);
      }
      if (env.fn === 'inc') await busyHeld;
    }, 2048);
    // Two slots: the first report's slot goes to `busy`, queued before it, so the value is not spilled again before the second report.
    const rt = new Runtime({ ...fast, maxConcurrency: 2 }, { backend: f.backend });
    let lostReports = 0;
    rt.onEvent((e) => {
      if (e.type === 'retrying' && e.reason === 'argument-lost') lostReports++;
    });
    const data = rt.put(new Float64Array(200).fill(1));
    const one = rt.remote(describeValue, data);
    const two = rt.remote(describeValue, data);
    const busy = rt.remote(inc, 1);
    for (let i = 0; i < 1000 && lostReports < 2; i++) await turns(1);
    assert.equal(lostReports, 2, 'both runs reported the value missing');
    releaseBusy();
    assert.deepEqual(await rt.get([one, two, busy]), ['Float64Array(200) sum=200', 'Float64Array(200) sum=200', 2], 'the value is still in memory: it is not lost');
    assert.equal(f.invoked.filter((i) => i.fn === 'describeValue').length, 4);
    assert.equal(rt.faultCounts.rebuilds, 0);
    await rt.shutdown();
  });

  it("a task's own OBJECT_MISSING exception naming its argument's key fails the task; the argument is not rebuilt", async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.remote(filled, 100, 1);
    const key = `volley/jobs/${rt.jobId}/${rt.runId}/${data.id}`;
    await assert.rejects(rt.get(rt.remote(throwsMissing, data, key)), (e: unknown) => {
      assert.ok(e instanceof TaskError, String(e));
      assert.equal(e.fault, 'user');
      assert.equal(e.remote?.code, 'OBJECT_MISSING');
      assert.match(e.message, /the task looked for .* and did not find it/);
      return true;
    });
    assert.deepEqual(f.fns(), ['filled#1', 'throwsMissing#1']);
    assert.equal(rt.faultCounts.rebuilds, 0);
    await rt.shutdown();
  });

  it('two get()s of a lost stored result run its task once more, also when the second read fails only after the rebuild', async () => {
    const f = scriptedBackend();
    const store = f.backend.store;
    const read = store.get.bind(store);
    let holding = false;
    let missing = 0;
    let releaseSecond!: () => void;
    const secondHeld = new Promise<void>((r) => (releaseSecond = r));
    store.get = (key: string) => {
      let r: Promise<Uint8Array>;
      try {
        r = read(key);
      } catch (err) {
        r = Promise.reject(err);
      }
      if (!holding) return r;
      // The second reader's failed read comes back only when the test says so.
      return r.catch(async (err: unknown) => {
        if (++missing === 2) await secondHeld;
        throw err;
      });
    };
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.remote(filled, 50, 1);
    await rt.wait([data]);
    await f.store.deletePrefix('volley/');
    holding = true;
    const one = rt.get(data);
    const two = rt.get(data);
    assert.equal((await one)[0], 1);
    assert.equal(missing, 2, 'both readers found it missing');
    releaseSecond();
    assert.equal((await two)[0], 1);
    assert.deepEqual(f.fns(), ['filled#1', 'filled#2'], 'rebuilt once');
    assert.equal(rt.faultCounts.rebuilds, 1);
    await rt.shutdown();
  });

  it("a lost result whose producer's stored argument is still held rebuilds only that result", async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const rebuilds: string[] = [];
    rt.onEvent((e) => {
      if (e.type === 'rebuilding') rebuilds.push(e.taskId);
    });
    const data = rt.remote(filled, 100, 2);
    const copy = rt.remote(echo, data);
    await rt.wait([copy]);
    await f.store.delete([`volley/jobs/${rt.jobId}/${rt.runId}/${copy.id}`]);
    assert.equal(
      ((await rt.get(copy)) as Float64Array).reduce((a, b) => a + b, 0),
      200,
    );
    assert.deepEqual(f.fns(), ['filled#1', 'echo#1', 'echo#2']);
    assert.deepEqual(rebuilds, [copy.id]);
    assert.equal(rt.faultCounts.rebuilds, 1);
    await rt.shutdown();
  });

  it("a lost result whose producer's inline argument was freed meanwhile puts that argument back, without running its task again", async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    let n: ObjectRef<number> | undefined = rt.remote(inc, 99);
    const data = rt.remote(filled, n as never, 3) as ObjectRef<Float64Array>;
    await rt.wait([data]);
    const gone = new WeakRef(n);
    n = undefined;
    await collected(gone);
    await f.store.deletePrefix('volley/');
    const value = await rt.get(data);
    assert.equal(value.length, 100);
    assert.equal(value[0], 3);
    assert.deepEqual(f.fns(), ['inc#1', 'filled#1', 'filled#2']);
    assert.equal(rt.faultCounts.rebuilds, 1);
    await rt.shutdown();
  });

  it("a rebuilt task's argument that the program dropped stays for another task that still takes it", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'describeValue') await held;
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    let data: ObjectRef<Float64Array> | undefined = rt.put(new Float64Array(100).fill(2));
    const dataKey = `volley/jobs/${rt.jobId}/${rt.runId}/${data.id}`;
    const copy = rt.remote(echo, data);
    // Sent, and held before it reads its argument.
    const reader = rt.remote(describeValue, data);
    await rt.wait([copy]);
    const gone = new WeakRef(data);
    data = undefined;
    await collected(gone);
    await f.store.delete([`volley/jobs/${rt.jobId}/${rt.runId}/${copy.id}`]);
    assert.equal(((await rt.get(copy)) as Float64Array)[99], 2);
    await turns();
    assert.equal(present(f.store, dataKey), true, 'the reader still takes it');
    release();
    assert.equal(await rt.get(reader), 'Float64Array(100) sum=200');
    assert.deepEqual(f.fns().sort(), ['describeValue#1', 'echo#1', 'echo#2'], 'the reader ran once, on its first try');
    assert.equal(rt.faultCounts.rebuilds, 1);
    await rt.shutdown();
  });
});

describe('cancel: corner cases', () => {
  it('a task cancelled from its own retrying event leaves no retry timer behind', async () => {
    const f = scriptedBackend((env, nth) => {
      if (nth === 1) throw new WorkerCrashedError(env.fn, env.taskId, 'exit code 137');
    });
    const rt = new Runtime({ retryBaseDelayMs: 600_000, retryMaxDelayMs: 600_000 }, { backend: f.backend });
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    let ref: ObjectRef<number> | undefined;
    rt.onEvent((e) => {
      if (e.type === 'retrying' && ref) rt.cancel(ref);
    });
    ref = rt.remote(inc, 1);
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof TaskCancelledError && /before it started$/.test(e.message));
    assert.equal(timers(), before, 'the retry it was waiting for is not scheduled');
    await rt.shutdown();
    assert.equal(timers(), before);
    assert.deepEqual(f.fns(), ['inc#1']);
  });

  it('a task failed by a backend that could not start is not cancelled afterwards: one finished event, the start error stays', async () => {
    const f = scriptedBackend();
    f.backend.invoker.serve = () => {
      throw new Error('the task channel could not be opened');
    };
    const rt = new Runtime(fast, { backend: f.backend });
    const finished: string[] = [];
    rt.onEvent((e) => {
      if (e.type === 'finished') finished.push(`${e.taskId} ${e.outcome}`);
    });
    const ref = rt.remote(inc, 1);
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof Error && e.message === 'the task channel could not be opened');
    rt.cancel(ref);
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof Error && e.message === 'the task channel could not be opened');
    assert.deepEqual(finished, [`${ref.id} crashed`]);
    assert.deepEqual(f.fns(), []);
    await rt.shutdown();
  });
});
