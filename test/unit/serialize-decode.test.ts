/**
 * The decoder at its edges: every payload it refuses is refused with a message that says what
 * is wrong with it (a worker or driver receiving bytes from another version, or from anyone who
 * can invoke a worker, must learn which), and the exact bounds of what it accepts.
 *
 * This file imports the codec without the library's entry point on purpose: the actor module
 * is not loaded here, as in a process that never touches actors.
 */
import assert from 'node:assert/strict';
import { serialize } from 'node:v8';
import { describe, it } from 'node:test';
import { ProtocolError, SerializationError } from '../../sdk/errors.js';
import { Matrix } from '../../sdk/matrix.js';
import { decode, encode } from '../../sdk/serialize.js';

const MARK = '\u0000volley';
const SUFFIX = "; it was not made by this version of volley's encoder";

/** A payload of V8's format holding a root marker around `value`, as the encoder writes it. */
const root = (value: unknown, extra: Record<string, unknown> = {}) => new Uint8Array(serialize({ [MARK]: 'root', value, ...extra }));

/** A framed payload: 'V', the header's length (or `declared`), the header, then `segBytes` bytes of segments. */
function framed(header: unknown, segBytes: number, declared?: number): Uint8Array {
  const h = serialize(header);
  const at = (5 + h.length + 7) & ~7;
  const out = new Uint8Array(at + segBytes);
  out[0] = 0x56;
  new DataView(out.buffer).setUint32(1, declared ?? h.length, true);
  out.set(h, 5);
  return out;
}

/** Asserts that decoding `bytes` is a ProtocolError saying exactly `what`. */
function refused(bytes: Uint8Array, what: string | RegExp, resolveRef?: (id: string) => unknown) {
  assert.throws(
    () => decode(bytes, resolveRef),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `a ProtocolError, not ${String(e)}`);
      if (typeof what === 'string') assert.equal(e.message, `malformed payload: ${what}${SUFFIX}`);
      else {
        assert.ok(e.message.startsWith('malformed payload: ') && e.message.endsWith(SUFFIX), e.message);
        assert.match(e.message, what);
      }
      return true;
    },
  );
}

describe('decoding: what is refused, and the message that says why', () => {
  it('an empty payload is a SerializationError of the value', () => {
    assert.throws(
      () => decode(new Uint8Array(0)),
      (e: unknown) => e instanceof SerializationError && e.message === 'cannot decode an empty payload' && e.path === 'value',
    );
  });

  it('compact JSON that does not parse, and bytes V8 cannot read', () => {
    refused(new Uint8Array([0x4a, 0x7b]), /^malformed payload: compact JSON that does not parse \(.+\);/);
    // A tag outside V8's format is refused by the pre-scan (sdk/v8-scan.ts); what it lets through
    // that V8 still refuses (an object whose property count is wrong) by V8.
    refused(new Uint8Array([0xff, 0x0f, 0x99]), /^malformed payload: tag 0x99 .*, which volley's encoder never writes, at byte 2 of its V8 serialization;/);
    refused(new Uint8Array([0xff, 0x0f, 0x6f, 0x7b, 0x05]), /^malformed payload: V8's deserializer refused it \(.+\);/);
  });

  it('frames: too short for a header, a header that is not a root marker or has no segment list', () => {
    refused(new Uint8Array([0x56, 1, 0, 0]), 'a frame shorter than its header');
    // Five bytes hold a header length (0): no longer too short, but an empty header.
    refused(new Uint8Array([0x56, 0, 0, 0, 0]), /no version header/);
    refused(framed({ value: 1, segs: [0] }, 0), 'a frame without a root marker');
    refused(framed({ [MARK]: 'bare', props: {}, segs: [0] }, 0), 'a frame without a root marker');
    // A header one byte longer than what follows the length field is refused, not clipped.
    const h = framed({ [MARK]: 'root', value: 1, segs: [0] }, 0);
    const tooLong = framed({ [MARK]: 'root', value: 1, segs: [0] }, 0, h.length - 4);
    refused(tooLong, `a frame header of ${h.length - 4} bytes in a payload of ${h.length}`);
    refused(framed({ [MARK]: 'root', value: 1 }, 0), 'a frame without its segment list');
    refused(framed({ [MARK]: 'root', value: 1, segs: [] }, 0), 'a frame without its segment list');
    refused(framed({ [MARK]: 'root', value: 1, segs: 'x' }, 0), 'a frame without its segment list');
    refused(root(1, { segs: [8] }), 'a segment list outside a frame');
  });

  it('segment lengths that are not whole, non-negative byte counts within the payload', () => {
    const value = { [MARK]: 'bin', type: 'Uint8Array', seg: 0 };
    for (const len of [-1, 1.5, 'x', 2 ** 53]) {
      const bytes = framed({ [MARK]: 'root', value, segs: [len] }, 16);
      refused(bytes, `segment 0 declares ${String(len)} bytes, more than the 16 left`);
    }
    // Bytes after the last segment are counted.
    refused(framed({ [MARK]: 'root', value, segs: [8] }, 24), '16 bytes after the last segment');
    // A second segment past the end names its index and what is left after the first.
    refused(framed({ [MARK]: 'root', value, segs: [8, 9] }, 16), 'segment 1 declares 9 bytes, more than the 8 left');
  });

  it('a segment exactly as long as what is left, and a header ending exactly at the end of the payload, are read', () => {
    const value = { [MARK]: 'bin', type: 'Uint8Array', seg: 0 };
    const whole = framed({ [MARK]: 'root', value, segs: [16] }, 16);
    whole.fill(9, whole.length - 16);
    assert.deepEqual(decode(whole), new Uint8Array(16).fill(9));
    // An empty last segment: the header's end is the payload's end (padded to 8 bytes).
    for (let pad = 0; pad < 8; pad++) {
      const bytes = framed({ [MARK]: 'root', value, segs: [0], pad: 'p'.repeat(pad) }, 0);
      if (bytes.length !== 5 + new DataView(bytes.buffer).getUint32(1, true)) continue;
      assert.deepEqual(decode(bytes), new Uint8Array(0));
      return;
    }
    assert.fail('no padding made the header end on an 8-byte boundary');
  });

  it('markers that do not hold what their kind needs', () => {
    refused(root({ [MARK]: 'bare' }), 'a bare-object marker without props');
    refused(root({ [MARK]: 'bare', props: null }), 'a bare-object marker without props');
    refused(root({ [MARK]: 'bare', props: 'ab' }), 'a bare-object marker without props');
    refused(root({ [MARK]: 'bare', props: [1] }), 'a bare-object marker without props');
    refused(root({ [MARK]: 'root', value: 1 }), 'a nested root marker');
    refused(root({ [MARK]: 'ref', id: 7 }), 'a ref marker without an id', () => 'x');
    for (const [rows, cols] of [
      [1.5, 1],
      [1, 1.5],
      ['1', 1],
      [1, '1'],
      [-1, 1],
      [1, -1],
    ]) {
      refused(root({ [MARK]: 'matrix', rows, cols, data: new Float64Array(1) }), 'a Matrix marker without integer dimensions');
    }
    refused(root({ [MARK]: 'matrix', rows: 1, cols: 2, data: [1, 2] }), 'a 1x2 Matrix marker whose data is not 2 float64 values');
    refused(root({ [MARK]: 'matrix', rows: 1, cols: 2, data: new Float64Array(3) }), 'a 1x2 Matrix marker whose data is not 2 float64 values');
    refused(root({ [MARK]: 'buffer', bytes: [1, 2] }), 'a Buffer marker without bytes');
    refused(root({ [MARK]: 'other' }), 'an unknown marker "other"');
    refused(root({ [MARK]: 'x'.repeat(40) }), `an unknown marker "${'x'.repeat(32)}"`);
    refused(root({ [MARK]: 5 }), 'an unknown marker "5"');
  });

  it('binary markers: the segment index, the type, whole elements, one value per segment', () => {
    const bin = (fields: Record<string, unknown>, segs = [16]) =>
      framed(
        { [MARK]: 'root', value: { [MARK]: 'bin', type: 'Uint8Array', seg: 0, ...fields }, segs },
        segs.reduce((n, len) => n + ((len + 7) & ~7), 0),
      );
    for (const seg of [-1, 1, 0.5, '0']) refused(bin({ seg }), `a binary marker for segment ${String(seg)} of 1`);
    refused(bin({ type: 5 }), 'a binary segment of unknown type 5');
    refused(bin({ type: 'Array' }), 'a binary segment of unknown type "Array"');
    // A type that only names a view type once converted to a string is not a type.
    refused(bin({ type: ['Uint8Array'] }), 'a binary segment of unknown type ["Uint8Array"]');
    refused(bin({ type: 'Float64Array' }, [12]), 'a Float64Array segment of 12 bytes (not whole elements)');
    refused(bin({ type: 'Int32Array' }, [6]), /^malformed payload: a Int32Array segment of 6 bytes/);
    // Whole elements of the type, of each width.
    assert.deepEqual(decode(bin({ type: 'Float64Array' })), new Float64Array(2));
    assert.deepEqual(decode(bin({ type: 'Uint16Array' }, [6])), new Uint16Array(3));
    const ab = decode(bin({ type: 'ArrayBuffer' }, [12]));
    assert.ok(ab instanceof ArrayBuffer && ab.byteLength === 12);
    // The last segment of two, by index.
    const two = framed({ [MARK]: 'root', value: [{ [MARK]: 'bin', type: 'Uint8Array', seg: 1 }], segs: [8, 8] }, 16);
    two.fill(4, two.length - 8);
    assert.deepEqual(decode(two), [new Uint8Array(8).fill(4)]);
    const twice = framed(
      {
        [MARK]: 'root',
        value: [
          { [MARK]: 'bin', type: 'Uint8Array', seg: 0 },
          { [MARK]: 'bin', type: 'Uint8Array', seg: 0 },
        ],
        segs: [8],
      },
      8,
    );
    refused(twice, 'segment 0 used twice');
  });

  it('refs where no resolver is given, and actor handles where the actor module is not loaded, are SerializationErrors', () => {
    assert.throws(
      () => decode(root({ [MARK]: 'ref', id: 'a-1' })),
      (e: unknown) => e instanceof SerializationError && e.message === 'found a ref (a-1) where none can be resolved' && e.path === 'value',
    );
    assert.throws(
      () => decode(root({ [MARK]: 'actor', handle: {} })),
      (e: unknown) => e instanceof SerializationError && e.message === 'found an actor handle, but the actor module is not loaded here' && e.path === 'value',
    );
  });
});

describe('decoding: values around markers', () => {
  it('V8 payloads of a bare null, undefined or primitive decode to it (markers are looked for only under a root)', () => {
    for (const v of [null, undefined, 7, 'x', true]) assert.equal(decode(new Uint8Array(serialize(v))), v);
    // Without a root marker around it, not even a marker at the top is looked at.
    const bare = { [MARK]: 'matrix', rows: 1, cols: 1, data: new Float64Array(1) };
    assert.deepEqual(decode(new Uint8Array(serialize(bare))), bare);
  });

  it('a sparse array beside a marker keeps its holes', () => {
    // biome-ignore lint/suspicious/noSparseArray: the holes are what this test checks
    const sparse = [1, , 3, , { b: Buffer.from('x') }];
    const back = decode(encode([sparse, Buffer.from('y')])) as [unknown[], Buffer];
    assert.equal(back[0].length, 5);
    assert.deepEqual(Object.keys(back[0]), ['0', '2', '4']);
    assert.ok(Buffer.isBuffer((back[0][4] as { b: unknown }).b));
  });

  it('a Map keyed by Buffers or Matrices keeps one entry per key, revived', () => {
    const m = new Matrix(1, 1, new Float64Array([2]));
    const back = decode(
      encode(
        new Map<unknown, unknown>([
          [Buffer.from('k'), 1],
          [m, 'm'],
          ['s', m],
          ['n', null],
        ]),
      ),
    ) as Map<unknown, unknown>;
    assert.equal(back.size, 4);
    assert.equal(back.get('n'), null);
    const keys = [...back.keys()];
    assert.ok(Buffer.isBuffer(keys[0]) && (keys[0] as Buffer).toString() === 'k');
    assert.ok(keys[1] instanceof Matrix);
    assert.equal(back.get(keys[1]), 'm');
    assert.equal(back.get('s'), keys[1], 'one Matrix, as a key and as a value');
  });

  it('a Set of Buffers and Matrices has the same items after the trip', () => {
    const back = decode(encode(new Set<unknown>([Buffer.from('a'), Buffer.from('b'), 3, new Matrix(1, 1, new Float64Array([4]))]))) as Set<unknown>;
    assert.equal(back.size, 4);
    const items = [...back];
    assert.deepEqual(
      items.slice(0, 3).map((x) => (Buffer.isBuffer(x) ? x.toString() : x)),
      ['a', 'b', 3],
    );
    assert.ok(items[3] instanceof Matrix && items[3].get(0, 0) === 4);
  });
});
