/**
 * Binary data on resizable and detached ArrayBuffers follows one rule at every size, below the
 * 64 KiB from which binary data is framed as raw segments and above it: a resizable ArrayBuffer
 * arrives resizable with its maximum length (as V8's serializer sends it); a typed array,
 * DataView or Buffer viewing one arrives as a fixed-length view of a copy of the bytes it views
 * (as Node's serializer sends every view); a detached one is refused, naming the path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObjectRef, SerializationError } from 'volley';
import { decode, encode, encodeArgs } from '../../sdk/serialize.js';

/** A resizable ArrayBuffer (ES2024; not in this project's TypeScript lib) holding 0, 1, 2, ... */
function resizable(length: number, maxByteLength: number): ArrayBuffer {
  const b = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(length, { maxByteLength });
  new Uint8Array(b).forEach((_, i, a) => {
    a[i] = i & 0xff;
  });
  return b;
}
const info = (b: ArrayBufferLike) => b as unknown as { resizable: boolean; maxByteLength: number };

/** Sizes below, at and above the framing threshold (64 KiB). */
const SIZES = [8, 64 * 1024 - 8, 64 * 1024, 1 << 20];

/** Through encode (a put value), and as an argument beside a ref (so inside a root marker). */
function trips(v: unknown): unknown[] {
  const arg = (
    decode(
      encodeArgs([v, new ObjectRef('r', { jobId: 'j' })], () => {}),
      () => 1,
    ) as unknown[]
  )[0];
  return [decode(encode(v)), (decode(encode({ v })) as { v: unknown }).v, arg];
}

describe('serialization: resizable and detached ArrayBuffers, one rule at every size', () => {
  it('a resizable ArrayBuffer arrives resizable, with its contents and maximum length, at every size', () => {
    for (const size of SIZES) {
      const b = resizable(size, size * 4);
      for (const back of trips(b)) {
        assert.ok(back instanceof ArrayBuffer, `${size}: an ArrayBuffer`);
        assert.equal(info(back).resizable, true, `${size} bytes: resizable`);
        assert.equal(info(back).maxByteLength, size * 4, `${size} bytes: its maximum length`);
        assert.deepEqual(new Uint8Array(back), new Uint8Array(b));
      }
    }
  });

  it('a view of a resizable ArrayBuffer arrives as a fixed-length view of the bytes it views, at every size', () => {
    for (const size of SIZES) {
      const b = resizable(size, size * 4);
      const views: [string, ArrayBufferView][] = [
        ['length-tracking Uint8Array', new Uint8Array(b)],
        ['Float64Array at an offset', new Float64Array(b, 8)],
        ['fixed-length Int16Array', new Int16Array(b, 2, 3)],
        ['DataView', new DataView(b, 1)],
        ['Buffer', Buffer.from(b, 4)],
      ];
      for (const [what, view] of views) {
        for (const back of trips(view)) {
          const v = back as ArrayBufferView;
          assert.equal(v.constructor, view.constructor, `${size} bytes, ${what}: the same type`);
          assert.equal(info(v.buffer).resizable, false, `${size} bytes, ${what}: fixed-length`);
          assert.equal(v.byteLength, view.byteLength, `${size} bytes, ${what}: the bytes it viewed`);
          assert.deepEqual(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
        }
      }
      // A length-tracking view sends the length it has when it is sent.
      const tracking = new Uint8Array(b);
      (b as unknown as { resize(n: number): void }).resize(size / 2);
      for (const back of trips(tracking)) assert.equal((back as Uint8Array).length, size / 2);
    }
  });

  it('a detached ArrayBuffer, or a view or Buffer of one, is refused naming the path, not with a TypeError', () => {
    for (const size of [8, 1 << 20]) {
      /** `view` (made while its buffer holds its contents), once its buffer is transferred away. */
      const detach = <T extends ArrayBufferView | ArrayBuffer>(view: T): T => {
        const b = ArrayBuffer.isView(view) ? view.buffer : view;
        structuredClone(b, { transfer: [b as ArrayBuffer] });
        return view;
      };
      const cases: [unknown, string, string][] = [
        [{ a: detach(new ArrayBuffer(size)) }, 'value.a', 'a detached ArrayBuffer'],
        [{ a: detach(new Float64Array(size / 8)) }, 'value.a', 'a view of a detached ArrayBuffer'],
        [[1, detach(new DataView(new ArrayBuffer(size)))], 'value[1]', 'a view of a detached ArrayBuffer'],
        [{ a: [detach(Buffer.from(new ArrayBuffer(size)))] }, 'value.a[0]', 'a view of a detached ArrayBuffer'],
      ];
      for (const [v, path, what] of cases) {
        assert.throws(
          () => encode(v),
          (e: unknown) =>
            e instanceof SerializationError &&
            e.path === path &&
            e.message ===
              `${path} is ${what}, which cannot be sent to a task or stored: its contents were transferred (postMessage, structuredClone or transfer()); send the buffer that received them`,
        );
      }
    }
  });
});
