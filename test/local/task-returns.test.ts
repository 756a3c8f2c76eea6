/**
 * A worker answers a task at once when its function returned a value, and waits otherwise: the
 * caller sees the same values, errors and order either way, in one thread's queue mixing both.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Runtime, TaskError } from 'volley';
import { badThen, later, now, refOut, viaThenable, withPut } from '../fixtures/returns.js';

const rt = new Runtime({ local: { maxWorkers: 1 } });
after(() => rt.shutdown());

describe('what a task returns', () => {
  it('a thenable that is not a promise is awaited, its then read once', async () => {
    assert.deepEqual(await rt.get(rt.remote(viaThenable, 7)), { i: 7, reads: 1 });
  });

  it('a then that throws when read fails the task with that error', async () => {
    const err = await rt.get(rt.remote(badThen)).catch((e: unknown) => e);
    assert.ok(err instanceof TaskError, String(err));
    assert.equal(err.remote?.name, 'RangeError');
    assert.match(err.message, /this then cannot be read/);
  });

  it('one thread runs values, promises, thenables, session users and returned refs in turn, each with its own context', async () => {
    const kinds = [now, later, viaThenable, withPut, refOut] as const;
    const refs = Array.from({ length: 40 }, (_, i) => rt.remote(kinds[i % kinds.length] as typeof now, i));
    const got = (await rt.get(refs)) as unknown[];
    got.forEach((v, i) => {
      switch (i % kinds.length) {
        case 0:
          assert.deepEqual(v, { i, id: refs[i]!.id });
          break;
        case 2:
          assert.deepEqual(v, { i, reads: 1 });
          break;
        default:
          assert.equal(v, i);
      }
    });
  });
});
