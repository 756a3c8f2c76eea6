/**
 * The Runtime's own API (submission, put, get, wait, cancel, the events and observers'
 * entry points, a task session's end) against an in-process backend: tasks run through the
 * real worker-side code. What is asserted is what the program sees: values, errors and their
 * messages, what was invoked with which options, where objects were stored.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DependencyError, GetTimeoutError, type ObjectRef, ObjectStoreError, Runtime, TaskCancelledError, TaskDepthError, TaskError, UsageError, VolleyError } from 'volley';
import type { InvokeOptions } from '../../sdk/backend.js';
import type { TaskEnvelope } from '../../sdk/protocol.js';
import { encode, encodeArgs } from '../../sdk/serialize.js';
import { fast, scriptedBackend, turns } from '../fakes/scripted-backend.js';
import { Counter } from '../fixtures/actors.js';
import { echo, failIfNegative, inc } from '../fixtures/tasks.js';

/** A promise and the function that resolves it: a run or a store call held until the test lets it go. */
function held<T = void>() {
  let release!: (v: T) => void;
  const promise = new Promise<T>((r) => (release = r));
  return { promise, release };
}

/** The scripted backend, with the options of each invocation and the envelopes recorded. */
function recording(script?: Parameters<typeof scriptedBackend>[0]) {
  const f = scriptedBackend(script);
  const options: InvokeOptions[] = [];
  const envelopes: TaskEnvelope[] = [];
  const invoke = f.backend.invoker.invoke.bind(f.backend.invoker);
  f.backend.invoker.invoke = (env, o) => {
    options.push({ ...o });
    envelopes.push(structuredClone(env));
    return invoke(env, o);
  };
  return { ...f, options, envelopes };
}

const isUsage = (re: RegExp, code?: string) => (e: unknown) => {
  assert.ok(e instanceof UsageError, String(e));
  assert.match(e.message, re);
  if (code) assert.equal(e.code, code);
  return true;
};

describe('starting and shutting down', () => {
  it('ready() resolves to the runtime, which names its target and is open until shutdown', async () => {
    const f = scriptedBackend();
    const rt = new Runtime(fast, { backend: f.backend });
    assert.equal(await rt.ready(), rt);
    assert.equal(rt.target, 'local');
    assert.equal(rt.isShutdown, false);
    await rt.shutdown();
    assert.equal(rt.isShutdown, true);
  });

  it('a shutdown before the backend is up closes it as soon as it is, and ready() says so', async () => {
    const f = scriptedBackend();
    let invokerClosed = 0;
    let backendClosed = 0;
    f.backend.invoker.close = async () => {
      invokerClosed++;
    };
    f.backend.close = async () => {
      backendClosed++;
    };
    const rt = new Runtime(fast, { backend: f.backend });
    const ref = rt.remote(inc, 1);
    const down = rt.shutdown();
    await assert.rejects(rt.ready(), isUsage(/^the runtime was shut down while starting$/, 'SHUT_DOWN'));
    await down;
    await turns();
    assert.equal(invokerClosed, 1);
    assert.equal(backendClosed, 1);
    assert.equal(f.invoked.length, 0, 'nothing ran');
    await assert.rejects(rt.get(ref), isUsage(/ref inc-1 belongs to a runtime that was shut down|shut down before this task finished/));
  });

  it('a backend that fails while starting fails ready() and every task with its error', async () => {
    const f = scriptedBackend();
    f.backend.invoker.serve = () => {
      throw new Error('the task channel could not be opened');
    };
    const rt = new Runtime(fast, { backend: f.backend });
    const ref = rt.remote(inc, 1);
    await assert.rejects(rt.ready(), /the task channel could not be opened/);
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof Error && e.message === 'the task channel could not be opened');
    assert.equal(f.invoked.length, 0);
    await rt.shutdown();
  });

  it('a backend failing with something that is not an Error fails the tasks with a VolleyError saying what it was', async () => {
    const f = scriptedBackend();
    f.backend.invoker.serve = () => {
      throw 'port in use';
    };
    const rt = new Runtime(fast, { backend: f.backend });
    const ref = rt.remote(inc, 1);
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof VolleyError && e.message === 'port in use');
    await rt.shutdown();
  });

  it('calls after shutdown are refused, naming the call', async () => {
    const f = scriptedBackend();
    const rt = new Runtime(fast, { backend: f.backend });
    await rt.shutdown();
    assert.throws(() => rt.remote(inc, 1), isUsage(/^inc\.remote\(\) was called after shutdown\(\); call init\(\) \(or create a new Runtime\) first$/));
    assert.throws(() => rt.put(1), isUsage(/^put\(\) was called after shutdown\(\)/));
  });
});

describe('submission', () => {
  it("a task runs with the runtime's taskTimeoutMs and taskMemoryMB unless its own options set them", async () => {
    const f = recording();
    const rt = new Runtime({ ...fast, taskTimeoutMs: 7000, taskMemoryMB: 512 }, { backend: f.backend });
    assert.equal(await rt.get(rt.remote(inc, 1)), 2);
    assert.equal(await rt.get(rt.remote(inc.options({ timeoutMs: 3000, memoryMB: 2048 }), 2)), 3);
    assert.deepEqual(
      f.options.map((o) => [o.timeoutMs, o.memoryMB]),
      [
        [7000, 512],
        [3000, 2048],
      ],
    );
    await rt.shutdown();
  });

  it('a timeout longer than one Lambda invocation is refused on a Lambda target, and allowed on the embedded one', async () => {
    const f = scriptedBackend();
    const lambda = new Runtime({ ...fast, target: 'emulator', cost: false, aws: { lambdaEndpoint: 'http://127.0.0.1:9', s3Endpoint: 'http://127.0.0.1:9' } }, { backend: f.backend });
    assert.throws(() => lambda.remote(inc.options({ timeoutMs: 900_001 }), 1), isUsage(/^inc: timeoutMs is 900001 ms, but target 'emulator' runs tasks on Lambda/));
    assert.equal(await lambda.get(lambda.remote(inc.options({ timeoutMs: 900_000 }), 1)), 2);
    await lambda.shutdown();
    const local = new Runtime(fast, { backend: scriptedBackend().backend });
    assert.equal(await local.get(local.remote(inc.options({ timeoutMs: 900_001 }), 1)), 2);
    await local.shutdown();
  });

  it("a task session's runtime names its tasks under the parent's id, stores under the parent's run, and stops at maxTaskDepth", async () => {
    const f = recording();
    const rt = new Runtime({ ...fast, maxTaskDepth: 3, inlineThresholdBytes: 64 }, { backend: f.backend, nest: { idPrefix: 'inc-7.', depth: 2, runId: 'runOfTheParentTask' } });
    const ref = rt.remote(inc, 1);
    assert.equal(ref.id, 'inc-7.1');
    assert.equal(await rt.get(ref), 2);
    assert.equal(f.envelopes[0]!.depth, 3);
    assert.equal(rt.runId, 'runOfTheParentTask');
    const big = rt.put(new Float64Array(64));
    await rt.get(big);
    assert.deepEqual(f.store.keys(), [`volley/jobs/${rt.jobId}/runOfTheParentTask/inc-7.2`]);
    await rt.shutdown();

    const deep = new Runtime({ ...fast, maxTaskDepth: 3 }, { backend: scriptedBackend().backend, nest: { idPrefix: 'x.', depth: 3, runId: 'runOfTheParentTask' } });
    assert.throws(
      () => deep.remote(inc, 1),
      (e: unknown) => e instanceof TaskDepthError && e.code === 'TASK_DEPTH' && /^inc\.remote\(\) would start a task at nesting depth 4, deeper than maxTaskDepth \(3\)/.test(e.message),
    );
    await deep.shutdown();
  });

  it('a ref from another runtime is refused as an argument, even where this runtime has an object of the same id', async () => {
    const one = new Runtime(fast, { backend: scriptedBackend().backend });
    const two = new Runtime(fast, { backend: scriptedBackend().backend });
    const mine = two.put(5);
    const theirs = one.put(5);
    assert.equal(mine.id, theirs.id);
    assert.throws(() => two.remote(inc, theirs), isUsage(/^args\[0\] is a ref from another runtime \(put-1\); refs can only be used on the runtime that made them$/));
    assert.equal(await two.get(two.remote(inc, mine)), 6);
    await one.shutdown();
    await two.shutdown();
  });

  it('call-site arguments up to inlineThresholdBytes travel inline; one byte more is uploaded once under the task id', async () => {
    const value = 'x'.repeat(200);
    const size = encodeArgs([value], () => undefined).length;
    for (const [threshold, kind] of [
      [size, 'inline'],
      [size - 1, 'stored'],
    ] as const) {
      const f = recording();
      const rt = new Runtime({ ...fast, inlineThresholdBytes: threshold }, { backend: f.backend });
      const ref = rt.remote(echo, value);
      assert.equal(await rt.get(ref), value);
      const args = f.envelopes[0]!.args;
      assert.equal(args.kind, kind, `threshold ${threshold}`);
      if (args.kind === 'stored') {
        assert.equal(args.key, `volley/jobs/${rt.jobId}/${rt.runId}/${ref.id}.args`);
        assert.equal(args.size, size);
      }
      await rt.shutdown();
    }
  });

  it('a task whose argument upload fails fails with the store error, without running', async () => {
    const f = scriptedBackend();
    f.store.put = async (key) => {
      throw new ObjectStoreError(`access denied writing ${key}`, key);
    };
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 16 }, { backend: f.backend });
    await assert.rejects(rt.get(rt.remote(echo, 'y'.repeat(100))), (e: unknown) => e instanceof ObjectStoreError && /^access denied writing volley\/jobs\/.*\/echo-1\.args$/.test(e.message));
    assert.equal(f.invoked.length, 0);
    await rt.shutdown();
  });

  it('a task submitted on an argument that failed already fails at once, naming the first failed argument', async () => {
    const f = scriptedBackend();
    const rt = new Runtime(fast, { backend: f.backend });
    const a = rt.remote(failIfNegative, -1);
    const b = rt.remote(failIfNegative, -2);
    await rt.wait([a, b], { numReturns: 2 });
    const c = rt.remote(echo, [a, b]);
    await assert.rejects(rt.get(c), (e: unknown) => {
      assert.ok(e instanceof DependencyError);
      assert.match(e.message, /^Task echo \(echo-3\) did not run: its argument from failIfNegative \(failIfNegative-1\) failed: ValidationFailure: expected a non-negative number, got -1$/);
      assert.ok(e.cause instanceof TaskError);
      return true;
    });
    assert.deepEqual(f.fns(), ['failIfNegative#1', 'failIfNegative#1']);
    await rt.shutdown();
  });
});

describe('put', () => {
  it('a value up to inlineThresholdBytes stays in the driver; one byte more is stored once under its id', async () => {
    const value = 'z'.repeat(300);
    const size = encode(value, 'v').length;
    for (const [threshold, stored] of [
      [size, false],
      [size - 1, true],
    ] as const) {
      const f = scriptedBackend();
      const rt = new Runtime({ ...fast, inlineThresholdBytes: threshold }, { backend: f.backend });
      const ref = rt.put(value);
      assert.equal(await rt.get(ref), value);
      assert.deepEqual(f.store.keys(), stored ? [`volley/jobs/${rt.jobId}/${rt.runId}/${ref.id}`] : [], `threshold ${threshold}`);
      await rt.shutdown();
    }
  });

  it('a put() whose upload fails fails its ref and the tasks that take it', async () => {
    const f = scriptedBackend();
    f.store.put = async (key) => {
      throw new ObjectStoreError(`bucket gone while writing ${key}`, key);
    };
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 16 }, { backend: f.backend });
    const ref = rt.put('q'.repeat(100));
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof ObjectStoreError && /^bucket gone while writing volley\/jobs\/.*\/put-1$/.test(e.message));
    await assert.rejects(rt.get(rt.remote(echo, ref)), (e: unknown) => e instanceof DependencyError && e.cause instanceof ObjectStoreError);
    assert.equal(f.invoked.length, 0);
    await rt.shutdown();
  });
});

describe('get and wait', () => {
  it('get of one ref is its value; of a list, the values in order', async () => {
    const rt = new Runtime(fast, { backend: scriptedBackend().backend });
    const a = rt.remote(inc, 1);
    const b = rt.put([1, 2]);
    assert.equal(await rt.get(a), 2);
    assert.deepEqual(await rt.get([b, a]), [[1, 2], 2]);
    assert.deepEqual(await rt.get([a]), [2]);
    await rt.shutdown();
  });

  it('get past its timeout names only the refs still pending; the tasks keep running', async () => {
    const gate = held();
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const done = rt.remote(inc, 1);
    const slow = rt.remote(echo, 'late');
    await rt.get(done);
    await assert.rejects(rt.get([done, slow], { timeoutMs: 1 }), (e: unknown) => {
      assert.ok(e instanceof GetTimeoutError);
      assert.deepEqual(e.pending, [slow.id]);
      assert.match(e.message, /^get timed out after 1 ms with 1 value\(s\) not ready \(echo-2\)/);
      return true;
    });
    gate.release();
    assert.equal(await rt.get(slow, { timeoutMs: 60_000 }), 'late');
    await rt.shutdown();
  });

  it("get's timeout covers reading a stored value: a stalled store read ends in a GetTimeoutError naming it", async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 16 }, { backend: f.backend });
    const small = rt.put(1);
    const big = rt.put('w'.repeat(100));
    await rt.wait([big]);
    const stall = held<Uint8Array>();
    const get = f.store.get.bind(f.store);
    f.store.get = () => stall.promise;
    await assert.rejects(rt.get([small, big], { timeoutMs: 20 }), (e: unknown) => {
      assert.ok(e instanceof GetTimeoutError);
      assert.deepEqual(e.pending, [`${big.id} (reading it from the store)`]);
      return true;
    });
    // A store that answers, a little late, is read within a generous timeout.
    f.store.get = (key) => new Promise((r) => setTimeout(() => r(get(key)), 5));
    assert.deepEqual(await rt.get([small, big], { timeoutMs: 60_000 }), [1, 'w'.repeat(100)]);
    stall.release(new Uint8Array());
    await rt.shutdown();
  });

  it('a failed ref makes get throw its error', async () => {
    const rt = new Runtime(fast, { backend: scriptedBackend().backend });
    const ok = rt.remote(inc, 1);
    const bad = rt.remote(failIfNegative, -3);
    await assert.rejects(rt.get([ok, bad]), (e: unknown) => e instanceof TaskError && /got -3/.test(e.message));
    await rt.shutdown();
  });

  it('wait returns the first numReturns settled refs (failed ones count) as ready, in the order given, and the rest as pending', async () => {
    const gate = held();
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const slow = rt.remote(echo, 0);
    const a = rt.remote(inc, 1);
    const bad = rt.remote(failIfNegative, -1);
    const c = rt.put(3);
    await rt.wait([a, bad], { numReturns: 2 });
    const two = await rt.wait([slow, a, bad, c], { numReturns: 2 });
    assert.deepEqual(two.ready, [a, bad]);
    assert.deepEqual(two.pending, [slow, c]);
    const all = await rt.wait([slow, a, bad, c], { numReturns: 3 });
    assert.deepEqual(all.ready, [a, bad, c]);
    assert.deepEqual(all.pending, [slow]);
    gate.release();
    await rt.shutdown();
  });
});

describe('cancel', () => {
  it('a put() value still uploading cannot be cancelled; a stored one is left alone', async () => {
    const f = scriptedBackend();
    const upload = held();
    const put = f.store.put.bind(f.store);
    f.store.put = async (k, b) => {
      await upload.promise;
      return put(k, b);
    };
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 16 }, { backend: f.backend });
    const ref = rt.put('u'.repeat(100));
    assert.throws(() => rt.cancel(ref), isUsage(/^cancel\(\): put-1 was made by put\(\), not by a task; only a task's ref can be cancelled$/));
    upload.release();
    assert.equal(await rt.get(ref), 'u'.repeat(100));
    rt.cancel(ref);
    assert.equal(await rt.get(ref), 'u'.repeat(100));
    await rt.shutdown();
  });

  it('a queued task is cancelled: it never runs, and get raises TaskCancelledError', async () => {
    const gate = held();
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const slow = rt.remote(echo, 1);
    const next = rt.remote(inc, slow as ObjectRef<number>);
    rt.cancel(next);
    await assert.rejects(rt.get(next), (e: unknown) => e instanceof TaskCancelledError);
    gate.release();
    assert.equal(await rt.get(slow), 1);
    assert.deepEqual(f.fns(), ['echo#1']);
    await rt.shutdown();
  });

  it('a task recorded as the child of another (addChild) is cancelled with it; childrenOf lists it', async () => {
    const gate = held();
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const parent = rt.remote(echo, 'p');
    const child = rt.remote(echo, 'c');
    const other = rt.remote(echo, 'o');
    assert.deepEqual(rt.childrenOf(parent.id), []);
    rt.addChild(parent.id, child);
    rt.addChild('no-such-task', other);
    assert.deepEqual(rt.childrenOf(parent.id), [child.id]);
    assert.deepEqual(rt.childrenOf('no-such-task'), []);
    rt.cancel(parent);
    await assert.rejects(rt.get(child), (e: unknown) => e instanceof TaskCancelledError);
    gate.release();
    assert.equal(await rt.get(other), 'o');
    await rt.shutdown();
  });
});

describe('stats and contained', () => {
  it('stats() counts tasks by function, and hands out copies', async () => {
    const rt = new Runtime(fast, { backend: scriptedBackend().backend });
    await rt.get([rt.remote(inc, 1), rt.remote(inc, 2), rt.remote(echo, 3)]);
    const s = rt.stats();
    assert.deepEqual(
      [...s].map(([fn, v]) => [fn, v.tasks]),
      [
        ['inc', 2],
        ['echo', 1],
      ],
    );
    for (const v of s.values()) for (const ms of [v.fetchMs, v.runMs, v.storeMs]) assert.ok(Number.isFinite(ms) && ms >= 0);
    s.get('inc')!.tasks = 99;
    s.delete('echo');
    assert.equal(rt.stats().get('inc')!.tasks, 2);
    assert.equal(rt.stats().get('echo')!.tasks, 1);
    await rt.shutdown();
  });

  it('contained() waits for the objects and gives where each is; a failed one throws its error, an unknown one says it is gone', async () => {
    const gate = held();
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 16 }, { backend: f.backend });
    const small = rt.remote(echo, 7);
    const big = rt.put('s'.repeat(100));
    let settled = false;
    const where = rt.contained([small.id, big.id]).finally(() => (settled = true));
    await turns();
    assert.equal(settled, false, 'waits for the running task');
    gate.release();
    const out = await where;
    assert.deepEqual(Object.keys(out), [small.id, big.id]);
    assert.equal(out[small.id]!.kind, 'inline');
    assert.deepEqual(out[big.id], { kind: 'stored', key: `volley/jobs/${rt.jobId}/${rt.runId}/${big.id}`, size: encode('s'.repeat(100), 'v').length });
    const bad = rt.remote(failIfNegative, -1);
    await assert.rejects(rt.contained([small.id, bad.id]), (e: unknown) => e instanceof TaskError && /got -1/.test(e.message));
    await assert.rejects(rt.contained(['put-99']), isUsage(/^the result holds ref put-99, whose object is gone$/));
    await rt.shutdown();
  });
});

describe("a task session's end", () => {
  it('fails what is pending, refuses new calls, closes the invoker once; a second end() does nothing', async () => {
    const gate = held();
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    let closed = 0;
    f.backend.invoker.close = async () => {
      closed++;
    };
    const rt = new Runtime(fast, { backend: f.backend, nest: { idPrefix: 'parent-1.', depth: 1, runId: 'runOfTheParentTask' } });
    const ref = rt.remote(echo, 1);
    await rt.ready();
    const pending = rt.get(ref);
    rt.end();
    rt.end();
    await assert.rejects(pending, isUsage(/^the task that started this task has finished$/, 'SHUT_DOWN'));
    assert.equal(rt.isShutdown, true);
    assert.throws(() => rt.remote(inc, 1), isUsage(/^inc\.remote\(\) was called after shutdown\(\)/));
    await turns();
    assert.equal(closed, 1);
    gate.release();
  });
});

describe('events and observers', () => {
  it('onEvent takes a function and reports submissions and the driver store traffic until stopped', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 16 }, { backend: f.backend });
    assert.throws(() => rt.onEvent('log' as never), isUsage(/^onEvent\(\) takes a function \(event\) => void, got string$/));
    const seen: string[] = [];
    const stop = rt.onEvent((e) => {
      if (e.type === 'submitted') {
        assert.equal(typeof e.time, 'number');
        seen.push(`submitted ${e.taskId} ${e.fn}`);
      } else if (e.type === 'store') seen.push(`store ${e.op} ${e.count}`);
    });
    const ref = rt.put('e'.repeat(100));
    await rt.get(rt.remote(inc, 1));
    assert.equal(await rt.get(ref), 'e'.repeat(100));
    stop();
    await rt.get(rt.remote(inc, 2));
    assert.deepEqual(seen, ['submitted inc-2 inc', 'store put 1', 'store get 1']);
    await rt.shutdown();
  });

  it('cost(), timeline() and dashboardUrl() say how to turn on what they need', async () => {
    const rt = new Runtime(fast, { backend: scriptedBackend().backend });
    await assert.rejects(rt.cost(), isUsage(/^cost\(\) needs the cost to be counted from the start: pass init\(\{ cost: true \}\)/));
    await assert.rejects(rt.timeline(), isUsage(/^timeline\(\) needs the timeline to be recorded from the start: pass init\(\{ timeline: true \}\)/));
    await assert.rejects(rt.dashboardUrl(), isUsage(/^dashboardUrl\(\): the dashboard is off; pass init\(\{ dashboard: true \}\)/));
    await rt.shutdown();
  });

  it('with the timeline and the cost on, timeline() gives the trace or writes it to a path, and cost() a report', async () => {
    const rt = new Runtime({ ...fast, timeline: true, cost: true }, { backend: scriptedBackend().backend });
    await rt.ready();
    await rt.get(rt.remote(inc, 1));
    await assert.rejects(rt.timeline(''), isUsage(/^timeline\(path\) takes a file path, got ""$/));
    await assert.rejects(rt.timeline(42 as never), isUsage(/^timeline\(path\) takes a file path, got 42$/));
    const trace = await rt.timeline();
    assert.ok(trace.traceEvents.some((e) => e.name === 'inc'));
    const dir = mkdtempSync(join(tmpdir(), 'volley-trace-'));
    try {
      const path = join(dir, 'trace.json');
      assert.equal(await rt.timeline(path), path);
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')).otherData.job, rt.jobId);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const report = await rt.cost();
    assert.equal(report.lambda.requests, 1);
    await rt.shutdown();
  });

  it("backendReady() is the started backend; jobPrefixOf names the run's prefix in its store", async () => {
    const f = scriptedBackend();
    const rt = new Runtime(fast, { backend: f.backend });
    const b = await rt.backendReady();
    assert.equal(b.invoker, f.backend.invoker);
    assert.equal(rt.jobPrefixOf(b), `volley/jobs/${rt.jobId}/${rt.runId}/`);
    await rt.shutdown();
  });
});

describe("submissions of a running task's calls", () => {
  it('a task held by its after hook runs only once that resolves; one whose hook rejects fails with its error without running', async () => {
    const f = scriptedBackend();
    const rt = new Runtime(fast, { backend: f.backend });
    const go = held();
    const ref = rt.submit(inc.definition, {}, [1], { after: go.promise });
    await turns();
    assert.deepEqual(f.fns(), []);
    go.release();
    assert.equal(await rt.get(ref), 2);
    const bad = rt.submit(inc.definition, {}, [5], { after: Promise.reject(new Error('the actor failed to start')) });
    await assert.rejects(rt.get(bad), (e: unknown) => e instanceof Error && e.message === 'the actor failed to start');
    assert.deepEqual(f.fns(), ['inc#1']);
    await rt.shutdown();
  });

  it("a call made under a running task's id joins it as a child one level deeper; one whose task is not running is refused", async () => {
    const gate = held();
    const f = recording(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    const rt = new Runtime(fast, { backend: f.backend });
    const parent = rt.remote(echo, 'p');
    await turns();
    const child = rt.submit(inc.definition, {}, [1], undefined, { id: `${parent.id}.c1`, parentId: parent.id });
    assert.equal(child.id, 'echo-1.c1');
    assert.equal(await rt.get(child), 2);
    assert.equal(f.envelopes.find((e) => e.fn === 'inc')!.depth, 1);
    assert.deepEqual(rt.childrenOf(parent.id), [child.id]);
    assert.throws(
      () => rt.submit(inc.definition, {}, [1], undefined, { id: `${parent.id}.c1`, parentId: parent.id }),
      isUsage(/^inc\.remote\(\): the task echo-1 that made this call is not running$/),
    );
    assert.throws(() => rt.submit(inc.definition, {}, [1], undefined, { id: 'x.c1', parentId: 'inc-99' }), isUsage(/^inc\.remote\(\): the task inc-99 that made this call is not running$/));
    gate.release();
    await rt.get(parent);
    assert.throws(() => rt.submit(inc.definition, {}, [1], undefined, { id: `${parent.id}.c2`, parentId: parent.id }), isUsage(/the task echo-1 that made this call is not running/));
    await rt.shutdown();
  });

  it('an actor cannot be started after shutdown', async () => {
    const rt = new Runtime(fast, { backend: scriptedBackend().backend });
    await rt.shutdown();
    assert.throws(() => rt.actor(Counter), isUsage(/^Counter\.remote\(\) was called after shutdown\(\)/));
  });
});

describe('refusals at the API boundary', () => {
  it("get, wait and cancel name themselves when given another runtime's ref or something that is not a ref", async () => {
    const one = new Runtime(fast, { backend: scriptedBackend().backend });
    const two = new Runtime(fast, { backend: scriptedBackend().backend });
    const theirs = one.put(1);
    await assert.rejects(two.get(theirs), isUsage(/^get\(\): ref put-1 belongs to another runtime; use that runtime's get\(\)$/));
    await assert.rejects(two.get(['x'] as never), isUsage(/^get\(\): item 0 is not an ObjectRef \(got string\)/));
    await assert.rejects(two.wait([theirs]), isUsage(/^wait\(\): ref put-1 belongs to another runtime/));
    await assert.rejects(two.wait('x' as never), isUsage(/^wait\(\)/));
    assert.throws(() => two.cancel(theirs), isUsage(/^cancel\(\): ref put-1 belongs to another runtime/));
    assert.throws(
      () => two.put(() => 1),
      (e: unknown) => e instanceof VolleyError && e.name === 'SerializationError' && /put\(value\)/.test(e.message),
    );
    await one.shutdown();
    await two.shutdown();
  });

  it('a task on an argument that failed fails at once, even while every slot is taken', async () => {
    const gate = held();
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'echo') await gate.promise;
    });
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: f.backend });
    const bad = rt.remote(failIfNegative, -1);
    await rt.wait([bad]);
    const busy = rt.remote(echo, 'busy');
    await turns();
    const after = rt.remote(inc, bad);
    const w = await rt.wait([after], { timeoutMs: 0 });
    assert.deepEqual(w.ready, [after], 'failed without waiting for a slot');
    await assert.rejects(rt.get(after), (e: unknown) => e instanceof DependencyError);
    gate.release();
    assert.equal(await rt.get(busy), 'busy');
    await rt.shutdown();
  });

  it('a get with a timeout that returned leaves no timer behind (the program can exit)', async () => {
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 16 }, { backend: scriptedBackend().backend });
    const big = rt.put('t'.repeat(100));
    await rt.wait([big]);
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    assert.equal(await rt.get(big, { timeoutMs: 600_000 }), 't'.repeat(100));
    assert.equal(timers(), before);
    await rt.shutdown();
  });
});
