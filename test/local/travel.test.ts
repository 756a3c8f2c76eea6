/**
 * What a task receives and returns is what V8's serializer keeps of the value, with or without
 * refs inside: an array's named properties and holes, and a resizable ArrayBuffer's maximum
 * length at any size, through a worker thread and back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Runtime } from 'volley';
import { echo } from '../fixtures/tasks.js';

describe('values that travel, through a task and back', () => {
  it('an array holding a ref keeps its named properties and holes, as without the ref; a resizable ArrayBuffer stays resizable', async () => {
    const rt = await new Runtime({ local: { maxWorkers: 1 } }).ready();
    try {
      const r = rt.put({ n: 5 });
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      const a = Object.assign([r, , 2], { label: 'x', inner: [r] });
      const out = (await rt.get(rt.remote(echo, a))) as unknown[] & { label?: string; inner?: unknown[] };
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      assert.deepStrictEqual(out, Object.assign([{ n: 5 }, , 2], { label: 'x', inner: [{ n: 5 }] }));
      assert.equal(out.inner?.[0], out[0], 'one ref, one value');
      const withoutRef = (await rt.get(rt.remote(echo, Object.assign([1, 2], { label: 'x' })))) as { label?: string };
      assert.equal(withoutRef.label, 'x');
      // A resizable ArrayBuffer stays resizable at any size (from 64 KiB on, binary data is framed).
      for (const size of [8, 1 << 20]) {
        const b = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(size, { maxByteLength: 2 * size });
        const back = (await rt.get(rt.remote(echo, { b, r }))) as { b: ArrayBuffer & { resizable: boolean; maxByteLength: number } };
        assert.deepEqual([back.b.byteLength, back.b.resizable, back.b.maxByteLength], [size, true, 2 * size]);
      }
    } finally {
      await rt.shutdown();
    }
  });
});
