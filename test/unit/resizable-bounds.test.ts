/**
 * A resizable ArrayBuffer declares a maximum length that V8's deserializer reserves (address
 * space) without a check: 9 bytes may reserve 4 GiB, and a few thousand such buffers exhaust the
 * process's address space, after which every ArrayBuffer allocation fails. The decoder bounds
 * the maximum lengths of a payload's resizable ArrayBuffers by its size (a ProtocolError before
 * V8 reads it), the encoder refuses the same values at the call site with the path of the
 * buffer, and resizable ArrayBuffers within the bound travel as they are.
 */
import assert from 'node:assert/strict';
import { serialize } from 'node:v8';
import { describe, it } from 'node:test';
import { ProtocolError, SerializationError } from 'volley';
import { decode, encode, encodeArgs } from '../../sdk/serialize.js';
import { RESERVE_FREE, RESERVE_PER_BYTE } from '../../sdk/v8-scan.js';
import { varint } from '../fakes/v8-bytes.js';

/** V8's bytes for an empty resizable ArrayBuffer of maximum length `max`: '~' 0 max. */
const emptyResizable = (max: number) => [0x7e, 0x00, ...varint(max)];

/** A resizable ArrayBuffer (ES2024; not in this project's TypeScript lib). */
const resizable = (length: number, maxByteLength: number): ArrayBuffer => new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(length, { maxByteLength });
const maxOf = (b: unknown) => (b as { maxByteLength: number }).maxByteLength;
const isResizable = (b: unknown) => (b as { resizable: boolean }).resizable;

const refusedDecode = (bytes: Uint8Array, largest: number) =>
  assert.throws(
    () => decode(bytes),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError, String(e));
      assert.match(e.message, new RegExp(`^payload refused: it holds a resizable ArrayBuffer of maximum length ${largest}; .*send a fixed-length copy`));
      return true;
    },
  );

describe('resizable ArrayBuffers: their maximum lengths are bounded by the payload size', () => {
  it('a 9-byte payload declaring a maximum of 2^32-1 bytes is refused with a ProtocolError, alone or among values', () => {
    const crafted = Uint8Array.from([0xff, 0x0f, ...emptyResizable(2 ** 32 - 1)]);
    assert.equal(crafted.length, 9);
    refusedDecode(crafted, 2 ** 32 - 1);
    // Made as an attacker would: a dense array of 1,000 buffers of 1 MiB maximum each (1 GiB in about 5 kB).
    const many = Uint8Array.from([0xff, 0x0f, 0x41, ...varint(1000), ...Array.from({ length: 1000 }, () => emptyResizable(2 ** 20)).flat(), 0x24, 0x00, ...varint(1000)]);
    refusedDecode(many, 2 ** 20);
  });

  it('within the bound (64 MiB plus 1 KiB per byte), a resizable ArrayBuffer travels resizable, with its contents and maximum', () => {
    const b = resizable(4, 2 ** 20);
    new Uint8Array(b).set([1, 2, 3, 4]);
    const back = decode(encode({ b })) as { b: ArrayBuffer };
    assert.ok(isResizable(back.b));
    assert.deepEqual([maxOf(back.b), [...new Uint8Array(back.b)]], [2 ** 20, [1, 2, 3, 4]]);
    // At the bound exactly: the free share alone.
    const atFree = Uint8Array.from(serialize(resizable(0, RESERVE_FREE)));
    assert.equal(maxOf(decode(atFree)), RESERVE_FREE);
    // Past it by the payload's own allowance: refused.
    const over = RESERVE_FREE + RESERVE_PER_BYTE * atFree.length + 1;
    refusedDecode(Uint8Array.from(serialize(resizable(0, over))), over);
  });

  it('the encoder refuses the same values at the call site, naming the largest buffer', () => {
    const big = resizable(0, 2 ** 30);
    const refused = (f: () => unknown, path: string) =>
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof SerializationError, String(e));
        assert.equal(e.path, path);
        assert.ok(e.message.startsWith(`${path} is a resizable ArrayBuffer of maximum length ${2 ** 30}, which cannot be sent to a task or stored: `), e.message);
        assert.match(e.message, /buffer\.slice\(0\)/);
        return true;
      });
    refused(() => encode({ data: [1, big] }), 'value.data[1]');
    refused(() => encodeArgs([5, { buf: big }], () => {}), 'args[1].buf');
    refused(() => encode(new Map([['k', new Set([big])]])), 'value.get("k").<item 0>');
    // Many small ones that together exceed the bound are refused too; the largest is named.
    const many = Array.from({ length: 40 }, (_, i) => resizable(0, 2 ** 22 + i));
    assert.throws(
      () => encode(many),
      (e: unknown) => e instanceof SerializationError && e.path === 'value[39]' && e.message.startsWith(`value[39] is a resizable ArrayBuffer of maximum length ${2 ** 22 + 39}`),
    );
  });
});
