import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DuplicateTaskError, Runtime, UsageError, WorkerCrashedError, get, init, put, remote, shutdown, wait } from 'volley';
import { add, countCalls, crash, inc, nap, quickUnless } from '../fixtures/tasks.js';
import { TaskTimeoutError } from 'volley';

describe('the default runtime (top-level API)', () => {
  after(() => shutdown());

  it('init, rf.remote, put, get, wait and shutdown work as in Ray', async () => {
    const rt = await init({ local: { maxWorkers: 4 } });
    await assert.rejects(init(), (e: unknown) => e instanceof UsageError && /called twice/.test(e.message));
    const x = put(40);
    const ref = add.remote(x, 2);
    assert.equal(await get(ref), 42);
    assert.deepEqual(await get([inc.remote(1), inc.remote(ref)]), [2, 43]);
    const { ready } = await wait([nap.remote(1, 'a')], { timeoutMs: 10_000 });
    assert.equal(ready.length, 1);
    assert.equal(rt.isShutdown, false);
    await shutdown();
    assert.equal(rt.isShutdown, true);
    await assert.rejects(get(ref), (e: unknown) => e instanceof UsageError && /shut down/.test(e.message));
  });

  it('starts on first use without init(), like ray.init()', async () => {
    assert.equal(await get(add.remote(1, 1)), 2);
    await shutdown();
  });

  it('calling a remote function directly says to use .remote', () => {
    assert.throws(
      () => (add as unknown as (a: number, b: number) => number)(1, 2),
      (e: unknown) => e instanceof UsageError && /add\.remote\(/.test(e.message),
    );
  });

  it('a second task with the same name is a clear error', () => {
    assert.throws(
      () =>
        remote(function add(a: number) {
          return a;
        }),
      (e: unknown) => e instanceof DuplicateTaskError && /two tasks are named "add"/.test(e.message),
    );
    assert.throws(
      () => remote((x: number) => x),
      (e: unknown) => e instanceof UsageError && /named function/.test(e.message),
    );
    assert.throws(
      () => remote(add as never, { timeout: 3 } as never),
      (e: unknown) => e instanceof UsageError && /valid options are: name, timeoutMs, memoryMB/.test(e.message),
    );
  });
});

describe('the embedded runtime', () => {
  const runtimes: Runtime[] = [];
  const start = (o?: ConstructorParameters<typeof Runtime>[0]) => {
    const rt = new Runtime(o);
    runtimes.push(rt);
    return rt;
  };
  after(() => Promise.all(runtimes.map((r) => r.shutdown())));

  it('reports a worker that exits during a task as a crash, replaces it and keeps going', async () => {
    const rt = start({ local: { maxWorkers: 2 } });
    const err = await rt.get(rt.remote(crash, 3)).catch((e: unknown) => e);
    assert.ok(err instanceof WorkerCrashedError, `expected WorkerCrashedError, got ${String(err)}`);
    assert.equal(err.functionName, 'crash');
    assert.equal(err.fault, 'infrastructure');
    assert.match(err.message, /exited with code 3/);
    assert.deepEqual(await rt.get([1, 2, 3].map((x) => rt.remote(inc, x))), [2, 3, 4]);
  });

  for (const how of ['exit', 'hang'] as const) {
    it(`loses no task when a worker ${how === 'exit' ? 'dies' : 'times out'} among many short tasks`, async () => {
      const rt = start({ local: { maxWorkers: 2 } });
      const fn = quickUnless.options({ timeoutMs: 1500, maxRetries: 0 });
      // Warm up: the pool learns that this function is short and starts batching it.
      await rt.get(Array.from({ length: 20 }, (_, i) => rt.remote(fn, i, -1, how)));
      const refs = Array.from({ length: 400 }, (_, i) => rt.remote(fn, i, 150, how));
      const settled = await Promise.allSettled(refs.map((r) => rt.get(r)));
      const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [[i, s.reason] as const] : []));
      assert.equal(failed.length, 1, `failures: ${failed.map(([i, e]) => `${i}: ${String(e)}`).join('; ')}`);
      assert.equal(failed[0]![0], 150);
      assert.ok(how === 'exit' ? failed[0]![1] instanceof WorkerCrashedError : failed[0]![1] instanceof TaskTimeoutError, String(failed[0]![1]));
      settled.forEach((s, i) => i !== 150 && assert.deepEqual(s, { status: 'fulfilled', value: i }));
    });
  }

  it('keeps module state between tasks on a warm worker, like Lambda', async () => {
    const rt = start({ local: { maxWorkers: 1 } });
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) counts.push(await rt.get(rt.remote(countCalls)));
    assert.deepEqual(counts, [1, 2, 3]);
  });

  it('validates wait() arguments eagerly and says how to fix the call', async () => {
    const rt = start();
    const a = rt.put(1);
    await assert.rejects(rt.wait([a, a]), (e: unknown) => e instanceof UsageError && /same ref .* twice \(positions 0 and 1\)/.test(e.message));
    await assert.rejects(rt.wait([a], { numReturns: 2 }), (e: unknown) => e instanceof UsageError && /numReturns must be an integer from 1 to the number of refs \(1\)/.test(e.message));
    await assert.rejects(rt.wait([a], { timeoutMs: -1 }), (e: unknown) => e instanceof UsageError && /timeoutMs must be a number >= 0/.test(e.message));
    await assert.rejects(rt.wait([a], { numreturns: 1 } as never), (e: unknown) => e instanceof UsageError && /valid options are: numReturns, timeoutMs/.test(e.message));
    await assert.rejects(rt.get(a, { timeoutMs: Number.NaN }), UsageError);
    await assert.rejects(rt.get([a, 'x' as never]), (e: unknown) => e instanceof UsageError && /item 1 is not an ObjectRef/.test(e.message));
  });

  it('refuses refs from another runtime', async () => {
    const a = start();
    const b = start();
    const ref = a.put(1);
    assert.throws(
      () => b.remote(inc, ref),
      (e: unknown) => e instanceof UsageError && /another runtime/.test(e.message),
    );
    await assert.rejects(b.get(ref), (e: unknown) => e instanceof UsageError && /another runtime/.test(e.message));
  });

  it('unknown init options are listed with the valid ones', () => {
    assert.throws(
      () => new Runtime({ workers: 3 } as never),
      (e: unknown) => e instanceof UsageError && /unknown option\(s\) "workers"; valid options are: target/.test(e.message),
    );
    assert.throws(
      () => new Runtime({ local: { maxWorkers: 0 } }),
      (e: unknown) => e instanceof UsageError && /maxWorkers/.test(e.message),
    );
  });

  it('grows the pool on demand up to maxWorkers and reclaims idle workers', async () => {
    const rt = start({ local: { maxWorkers: 3, idleTimeoutMs: 200 } });
    const pool = (await (rt as unknown as { starting: Promise<{ pool: { stats(): { alive: number; started: number } } }> }).starting).pool;
    assert.equal(pool.stats().alive, 0, 'no worker before the first task');
    await rt.get(Array.from({ length: 6 }, (_, i) => rt.remote(nap, 150, `n${i}`)));
    assert.equal(pool.stats().started, 3);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(pool.stats().alive, 0, 'idle workers were stopped');
    assert.equal(await rt.get(rt.remote(add, 1, 2)), 3);
  });

  it('shutdown stops every worker thread it started', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker').length;
    const rt = new Runtime({ local: { maxWorkers: 4 } });
    await rt.get([1, 2, 3, 4].map((ms) => rt.remote(nap, ms * 20, 'x')));
    assert.ok(process.getActiveResourcesInfo().length > 0);
    await rt.shutdown();
    const afterCount = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker').length;
    assert.equal(afterCount, before);
  });
});
