/**
 * An ObjectLostError that crosses from the driver into a worker thread and back keeps the lost
 * ref's id: a task put() an object that is then removed from the store (no task can rebuild
 * it); the task reads it through a child task and by itself, and sees the id on each error; and
 * the driver sees it on the remote error of the task's failure when the task lets the error escape.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type ObjectRef, Runtime, TaskError } from 'volley';
import { readOwnLostPut } from '../fixtures/lost-tasks.js';

const rt = new Runtime({ local: { maxWorkers: 2 } });
after(() => rt.shutdown());
const tmp = mkdtempSync(join(tmpdir(), 'volley-lost-'));
let files = 0;

/** Starts readOwnLostPut and removes its put() object from the store once it is there; the store key it had. */
async function runWithLostPut<T>(rethrow: boolean): Promise<{ ref: ObjectRef<T>; key: string }> {
  const store = ((await (rt as unknown as { starting: Promise<{ store: never }> }).starting) as { store: { delete(keys: string[]): Promise<void>; keys(): string[] } }).store;
  const go = join(tmp, `go${++files}`);
  const ref = rt.remote(readOwnLostPut, go, rethrow) as ObjectRef<unknown> as ObjectRef<T>;
  let key: string | undefined;
  while (!(key = store.keys().find((k) => k.includes(`/${ref.id}.`)))) await new Promise((r) => setTimeout(r, 5));
  await store.delete([key]);
  writeFileSync(go, '');
  return { ref, key };
}

describe("an ObjectLostError crossing a worker thread names the lost ref's id", () => {
  it('inside the task: through a child task that takes the object, and by get() of it', async () => {
    const { ref, key } = await runWithLostPut<{ id: string; viaChild: unknown; direct: unknown }>(false);
    const { id, viaChild, direct } = await rt.get(ref);
    const lost = { name: 'ObjectLostError', code: 'OBJECT_LOST', objectId: id, key };
    assert.deepEqual(viaChild, lost);
    assert.deepEqual(direct, lost);
  });

  it("on the driver, as the remote error of the task's failure", async () => {
    const { ref, key } = await runWithLostPut<never>(true);
    const err = await rt.get(ref).catch((e: unknown) => e);
    assert.ok(err instanceof TaskError, String(err));
    const { name, code, objectId, key: lostKey } = err.remote ?? {};
    assert.deepEqual([name, code, lostKey], ['ObjectLostError', 'OBJECT_LOST', key]);
    assert.match(objectId ?? '', new RegExp(`^${ref.id}\\.`));
  });
});
