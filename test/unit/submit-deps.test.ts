/**
 * What `submit` records as a task's dependencies: every ref among its arguments, each object
 * once, however many times and through however many ref objects it is passed, also past the
 * length where the list is searched through a set; and a task submitted while the arguments of
 * another are being encoded (by a getter among them) has its own dependencies, not the other's.
 * Asserted on the envelopes the invoker receives and on the values the tasks return.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObjectRef, Runtime } from 'volley';
import type { TaskEnvelope } from '../../sdk/protocol.js';
import { fast, scriptedBackend } from '../fakes/scripted-backend.js';
import { deepSum, echo, inc } from '../fixtures/tasks.js';

function recording() {
  const f = scriptedBackend();
  const envelopes: TaskEnvelope[] = [];
  const invoke = f.backend.invoker.invoke.bind(f.backend.invoker);
  f.backend.invoker.invoke = (env, o) => {
    envelopes.push(env);
    return invoke(env, o);
  };
  return { ...f, envelopes };
}

describe('the dependencies submit records', () => {
  it('each object once, among short and long argument lists, whichever ref object names it', async () => {
    const f = recording();
    const rt = await new Runtime(fast, { backend: f.backend }).ready();
    try {
      const refs = Array.from({ length: 20 }, (_, i) => rt.remote(inc, i));
      // The same object through a second ref object (as a task's decoded result would give).
      const again = new ObjectRef<number>(refs[0]!.id, rt as never);
      const short = rt.remote(deepSum, [refs[0], refs[1], refs[0], again]);
      const long = rt.remote(deepSum, [...refs, refs[19], again, ...refs]);
      assert.equal(await rt.get(short), 1 + 2 + 1 + 1);
      const one = (20 * 21) / 2;
      assert.equal(await rt.get(long), one + 20 + 1 + one);
      const depsOf = (ref: ObjectRef<unknown>) => Object.keys(f.envelopes.find((e) => e.taskId === ref.id)!.deps);
      assert.deepEqual(depsOf(short), [refs[0]!.id, refs[1]!.id]);
      assert.deepEqual(
        depsOf(long),
        refs.map((r) => r.id),
      );
    } finally {
      await rt.shutdown();
    }
  });

  it('a task submitted by a getter among the arguments of another: each has its own dependencies', async () => {
    const f = recording();
    const rt = await new Runtime(fast, { backend: f.backend }).ready();
    try {
      const a = rt.remote(inc, 10);
      const b = rt.remote(inc, 20);
      let inner: ObjectRef<number> | undefined;
      const args = {
        first: a,
        get nested() {
          inner = rt.remote(echo, b) as ObjectRef<number>;
          return 5;
        },
        last: a,
      };
      const outer = rt.remote(deepSum, args);
      assert.ok(inner);
      assert.equal(await rt.get(outer), 11 + 5 + 11);
      assert.equal(await rt.get(inner), 21);
      const depsOf = (ref: ObjectRef<unknown>) => Object.keys(f.envelopes.find((e) => e.taskId === ref.id)!.deps);
      assert.deepEqual(depsOf(outer), [a.id]);
      assert.deepEqual(depsOf(inner), [b.id]);
    } finally {
      await rt.shutdown();
    }
  });
});
