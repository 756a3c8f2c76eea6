/**
 * Cancelling a task that has finished does nothing (Ray's semantics), whether its result is
 * inline or in the store: no error, no second finished event, and get() returns its value;
 * also when the cancel comes from a listener of the task's own finished event, the moment the
 * task has ended and its value is being handed over.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type ObjectRef, Runtime, type VolleyEvent } from 'volley';
import { filled, inc } from '../fixtures/tasks.js';

const rt = new Runtime({ local: { maxWorkers: 2 } });
after(() => rt.shutdown());

/** A task with an inline result (a number) and one with a stored result (160 kB), each with what get() must return. */
const kinds: Array<[string, () => ObjectRef<unknown>, (v: unknown) => unknown]> = [
  ['inline', () => rt.remote(inc, 1), (v) => v],
  ['stored', () => rt.remote(filled, 20_000, 3), (v) => [(v as Float64Array).length, (v as Float64Array)[19_999]]],
];
const want: Record<string, unknown> = { inline: 2, stored: [20_000, 3] };

describe('cancel() of a finished task is a no-op', () => {
  for (const [kind, start, view] of kinds) {
    it(`${kind} result: after it finished, with every option`, async () => {
      for (const options of [undefined, { force: true }, { recursive: false }, { force: true, recursive: false }]) {
        const ref = start();
        await rt.wait([ref]);
        const finished: VolleyEvent[] = [];
        const stop = rt.onEvent((e) => e.type === 'finished' && finished.push(e));
        rt.cancel(ref, options);
        rt.cancel(ref, options);
        assert.deepEqual(view(await rt.get(ref)), want[kind], JSON.stringify(options));
        stop();
        assert.equal(finished.length, 0, 'no second finished event');
      }
    });

    it(`${kind} result: from a listener of its finished event`, async () => {
      const ref = start();
      const seen: Array<[string, unknown]> = [];
      await new Promise<void>((resolve) => {
        const stop = rt.onEvent((e) => {
          if (e.type !== 'finished' || e.taskId !== ref.id) return;
          stop();
          try {
            rt.cancel(ref);
            seen.push([e.outcome, 'cancel returned']);
          } catch (err) {
            seen.push([e.outcome, String(err)]);
          }
          resolve();
        });
      });
      assert.deepEqual(seen, [['ok', 'cancel returned']]);
      assert.deepEqual(view(await rt.get(ref)), want[kind]);
    });
  }
});
