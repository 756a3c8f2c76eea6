/**
 * Decoding costs time and memory in proportion to the bytes received, whatever the bytes say:
 * crafted payloads (a sparse array of length 2^32-1, a Matrix declaring 20000x20000 with no
 * data, segments larger than the payload, one segment behind many values) are decoded by
 * their present elements or refused with a ProtocolError; and property-based fuzzing with
 * fast-check throws mutated and random payloads and envelopes at the decoder and the
 * validators.
 *
 * Work is bounded by counting, not by a stopwatch: each crafted decode runs in a worker thread
 * that is terminated at a generous deadline (so the test ends within its own deadline even if
 * decoding would take minutes), and the fuzz checks that no decode allocates more than a fixed
 * multiple of its input (array length and binary bytes of the value it returns).
 */
import assert from 'node:assert/strict';
import { serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Matrix, ProtocolError, SerializationError } from 'volley';
import { PROTOCOL_VERSION, fromWire, toWire, validateResultEnvelope, validateTaskEnvelope } from '../../sdk/protocol.js';
import { validateLambdaRequest } from '../../sdk/aws/wire.js';
import { decode, encode, encodeArgs } from '../../sdk/serialize.js';
import { varint } from '../fakes/v8-bytes.js';

const MARK = '\u0000volley';
const root = (value: unknown, extra: Record<string, unknown> = {}) => new Uint8Array(serialize({ [MARK]: 'root', value, ...extra }));

/**
 * Runs `code` (CommonJS, eval'd) in a worker thread given `workerData.url` (the codec module)
 * and `workerData.bytes`; resolves with its one message, or 'unfinished' when it has not
 * answered within `deadlineMs` (the worker is then terminated).
 */
function inWorker<T>(code: string, bytes: Uint8Array, deadlineMs: number): Promise<T | 'unfinished'> {
  const w = new Worker(code, { eval: true, workerData: { url: new URL('../../sdk/serialize.js', import.meta.url).href, bytes } });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      void w.terminate();
      resolve('unfinished');
    }, deadlineMs);
    w.once('message', (m) => {
      clearTimeout(t);
      void w.terminate();
      resolve(m as T);
    });
    w.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** Decodes `bytes` in a worker thread, terminated after `deadlineMs`: the verdict, or 'unfinished'. */
function decodeWithin(bytes: Uint8Array, deadlineMs: number): Promise<{ ok: true; summary: string } | { ok: false; name: string; message: string } | 'unfinished'> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then(({ decode }) => {
      try {
        const v = decode(workerData.bytes);
        parentPort.postMessage({ ok: true, summary: Array.isArray(v) ? 'array ' + v.length + ' ' + Object.keys(v).length : String(v && v.constructor && v.constructor.name) });
      } catch (e) {
        parentPort.postMessage({ ok: false, name: e.name, message: e.message });
      }
    });`;
  return inWorker(code, bytes, deadlineMs);
}

/** V8's bytes for a sparse array of length `n` without elements: 'a' n '@' 0 n. */
const emptySparse = (n: number) => Uint8Array.from([0xff, 0x0f, 0x61, ...varint(n), 0x40, 0x00, ...varint(n)]);

/**
 * Decodes `bytes` in a worker thread: the verdict and how much V8's heap grew while the value
 * (or the error) was alive; 'unfinished' if it took more than `deadlineMs`.
 */
function decodeHeap(bytes: Uint8Array, deadlineMs: number): Promise<{ ok: boolean; what: string; heapMB: number } | 'unfinished'> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { getHeapStatistics } = require('node:v8');
    import(workerData.url).then(({ decode }) => {
      const before = getHeapStatistics().used_heap_size;
      let out;
      try {
        const v = decode(workerData.bytes);
        out = { ok: true, what: Array.isArray(v) ? 'array ' + v.length : typeof v };
      } catch (e) {
        out = { ok: false, what: e.name + ': ' + e.message };
      }
      out.heapMB = (getHeapStatistics().used_heap_size - before) / 2 ** 20;
      parentPort.postMessage(out);
    });`;
  return inWorker(code, bytes, deadlineMs);
}

describe('sparse arrays V8 would allocate densely (lengths up to 2^25)', () => {
  it('a 13-byte sparse array of length 30,000,000 or 2^25-1 is refused with a ProtocolError before V8 allocates it (240 and 268 MB)', { timeout: 60_000 }, async () => {
    for (const n of [30_000_000, 2 ** 25 - 1]) {
      const bytes = emptySparse(n);
      assert.equal(bytes.length, 13);
      const out = await decodeHeap(bytes, 20_000);
      assert.notEqual(out, 'unfinished', 'decoding did not finish within 20 s');
      if (out === 'unfinished') return;
      assert.equal(out.ok, false, `decoded: ${out.what}, heap grew ${out.heapMB.toFixed(1)} MB`);
      assert.match(out.what, new RegExp(`^ProtocolError: payload refused: it holds a sparse array of length ${n} with 0 elements; .*send a dense array .* or a Map`));
      assert.ok(out.heapMB < 16, `the heap grew ${out.heapMB.toFixed(1)} MB`);
    }
    // Longer arrays get dictionary elements: they cost their elements, and still travel.
    const long = await decodeHeap(emptySparse(2 ** 25 + 1), 20_000);
    assert.notEqual(long, 'unfinished');
    if (long !== 'unfinished') {
      assert.deepEqual([long.ok, long.what], [true, `array ${2 ** 25 + 1}`]);
      assert.ok(long.heapMB < 16, `the heap grew ${long.heapMB.toFixed(1)} MB`);
    }
  });

  it('1,000 sparse arrays of length 80,000 in 9 KB are refused together (613 MB), also inside a frame', { timeout: 60_000 }, async () => {
    // Made as an attacker would: a dense array of 1,000 empty sparse arrays.
    const one = [0x61, ...varint(80_000), 0x40, 0x00, ...varint(80_000)];
    const bytes = Uint8Array.from([0xff, 0x0f, 0x41, ...varint(1000), ...Array.from({ length: 1000 }, () => one).flat(), 0x24, 0x00, ...varint(1000)]);
    assert.ok(bytes.length < 16_000, `${bytes.length} bytes`);
    const out = await decodeHeap(bytes, 30_000);
    assert.notEqual(out, 'unfinished', 'decoding did not finish within 30 s');
    if (out === 'unfinished') return;
    assert.equal(out.ok, false, `decoded: ${out.what}, heap grew ${out.heapMB.toFixed(1)} MB`);
    assert.match(out.what, /^ProtocolError: .*a sparse array of length 80000 with 0 elements; .*\(\d+ for these \d+ bytes; 80000000 declared\)/);
    assert.ok(out.heapMB < 16, `the heap grew ${out.heapMB.toFixed(1)} MB`);
    // A frame's V8 header is checked the same way.
    const h = serialize({ [MARK]: 'root', value: [new Array(30_000_000), { [MARK]: 'bin', type: 'Uint8Array', seg: 0 }], segs: [8] });
    const framedBytes = new Uint8Array(((5 + h.length + 7) & ~7) + 8);
    framedBytes[0] = 0x56;
    new DataView(framedBytes.buffer).setUint32(1, h.length, true);
    framedBytes.set(h, 5);
    assert.throws(
      () => decode(framedBytes),
      (e: unknown) => e instanceof ProtocolError && /sparse array of length 30000000 with 0 elements/.test(e.message),
    );
  });

  it('the encoder refuses the same arrays at the call site, naming where they are', () => {
    // The last index first: V8 then keeps the array's elements in a dictionary, not 240 MB.
    const sparse = (n: number) => {
      const a: unknown[] = [];
      a[n - 1] = 'x';
      return a;
    };
    // 2,000,000 slots: over the allowance (the encoder's walk visits every index, so not more).
    const big = sparse(2_000_000);
    const refused = (f: () => unknown, path: string) =>
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof SerializationError, String(e));
        assert.equal(e.path, path);
        assert.match(e.message, new RegExp(`^${path.replace(/[[\].()]/g, '\\$&')} is a sparse array of length 2000000 with 1 element, which cannot be sent to a task or stored: .*send a dense array`));
        return true;
      });
    refused(() => encode({ data: [1, big] }), 'value.data[1]');
    refused(() => encodeArgs([5, { rows: big }], () => {}), 'args[1].rows');
    // Through the encoder's markers: a null-prototype object, next to a Matrix.
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { m: new Matrix(1, 1, new Float64Array(1)), holes: big });
    refused(() => encode(new Map([['k', bare]])), 'value.get("k").holes');
    // Many small ones that together exceed the allowance are refused too; the largest is named.
    const many = Array.from({ length: 40 }, (_, i) => sparse(50_000 + i));
    assert.throws(
      () => encode(many),
      (e: unknown) => e instanceof SerializationError && e.message.startsWith('value[39] is a sparse array of length 50039 with 1 element'),
    );
  });

  it('holey arrays within the allowance (2^20 slots plus 8 per byte) round-trip with their holes', () => {
    const one: unknown[] = [];
    one[999_999] = 'last';
    const half = new Array(400_000);
    for (let i = 0; i < half.length; i += 2) half[i] = i;
    const gap: unknown[] = [1, 2, 3];
    delete gap[1];
    const lead: unknown[] = [];
    lead[1] = 2;
    for (const v of [gap, one, half, { nested: [lead, one] }]) {
      const back = decode(encode(v));
      assert.deepStrictEqual(back, v);
    }
    const back = decode(encode(one)) as unknown[];
    assert.equal(back.length, 1_000_000);
    assert.ok(!(0 in back) && back[999_999] === 'last');
  });

  it('the encoder and the decoder apply one rule: an array is refused by both or round-trips (fast-check)', () => {
    fc.assert(
      fc.property(
        // Short arrays, and lengths around the allowance of a small payload (2^20 plus 8 per byte).
        fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 2 ** 20 - 2 ** 13, max: 2 ** 20 + 2 ** 14 })),
        fc.array(fc.tuple(fc.nat(), fc.oneof(fc.integer(), fc.string({ maxLength: 20 }))), { maxLength: 40 }),
        (length, items) => {
          const a: unknown[] = [];
          a[length - 1] = 0;
          for (const [i, x] of items) a[i % length] = x;
          let bytes: Uint8Array;
          try {
            bytes = encode(a);
          } catch (e) {
            assert.ok(e instanceof SerializationError && /is a sparse array of length/.test(e.message), String(e));
            // What the encoder refuses, the decoder refuses when V8's bytes come from elsewhere.
            assert.throws(() => decode(new Uint8Array(serialize(a))), ProtocolError);
            return;
          }
          const back = decode(bytes) as unknown[];
          assert.equal(back.length, a.length);
          assert.deepStrictEqual(Object.entries(back), Object.entries(a));
        },
      ),
      { numRuns: 50, seed: 20261126 },
    );
  });
});

describe('decoding crafted payloads', () => {
  it('a sparse array of length 2^32-1 is walked by its elements, not its length (282-byte payload)', { timeout: 30_000 }, async () => {
    // Made as an attacker would (V8's serializer writes sparse arrays by their elements).
    const sparse: unknown[] = [];
    sparse.length = 2 ** 32 - 1;
    sparse[5] = { inner: { [MARK]: 'matrix', rows: 1, cols: 1, data: new Float64Array([3]) } };
    const bytes = root([sparse]);
    assert.ok(bytes.length < 400, `${bytes.length} bytes`);
    // Minutes of work if the holes are walked; the deadline is far above what the elements need.
    const out = await decodeWithin(bytes, 10_000);
    assert.notEqual(out, 'unfinished', 'decoding did not finish within 10 s');
    assert.deepEqual(out, { ok: true, summary: 'array 1 1' });
    const back = decode(bytes) as unknown[][];
    assert.equal(back[0]!.length, 2 ** 32 - 1);
    assert.ok((back[0]![5] as { inner: unknown }).inner instanceof Matrix, 'the element present is revived');
  });

  it('the index walks of all arrays together cost at most the payload size: many sparse arrays each as long as the payload', { timeout: 60_000 }, async () => {
    // 200 sparse arrays as long as the whole payload (33.5 MB, a long string): walking each one's
    // indices would cost 200 x 33.5 M hole lookups (minutes); the budget is spent by the list
    // holding them, so each is walked by its one element. Lengths above 2^25 keep V8's
    // deserializer from allocating them densely.
    const S = 2 ** 25 + 64;
    const sparse = (len: number) => {
      const a: unknown[] = [];
      a[len - 1] = 0;
      return a;
    };
    const build = (len: number) => root(['x'.repeat(S), ...Array.from({ length: 200 }, () => sparse(len))]);
    const size = build(S).length;
    const bytes = build(size);
    assert.equal(bytes.length, size, 'each array is exactly as long as the payload');
    const out = await decodeWithin(bytes, 30_000);
    assert.notEqual(out, 'unfinished', 'decoding did not finish within 30 s');
    assert.deepEqual(out, { ok: true, summary: 'array 201 201' });
  });

  it('a Matrix marker declaring 20000x20000 without data is refused, not allocated (3.2 GB)', () => {
    const bytes = root({ [MARK]: 'matrix', rows: 20_000, cols: 20_000 });
    assert.ok(bytes.length < 100);
    assert.throws(
      () => decode(bytes),
      (e: unknown) => e instanceof ProtocolError && /20000x20000 Matrix marker/.test(e.message),
    );
    assert.throws(() => decode(root({ [MARK]: 'matrix', rows: 2, cols: 2, data: new Float64Array(3) })), ProtocolError);
    assert.throws(() => decode(root({ [MARK]: 'matrix', rows: -1, cols: 2, data: new Float64Array(0) })), ProtocolError);
  });

  function framed(header: unknown, segBytes: number, declaredHeaderLen?: number): Uint8Array {
    const h = serialize(header);
    const at = (5 + h.length + 7) & ~7;
    const out = new Uint8Array(at + segBytes);
    out[0] = 0x56;
    new DataView(out.buffer).setUint32(1, declaredHeaderLen ?? h.length, true);
    out.set(h, 5);
    return out;
  }

  it('framing errors are refused instead of clipped: header or segments longer than the payload, trailing bytes', () => {
    const bin = { [MARK]: 'bin', type: 'Float64Array', seg: 0 };
    const ok = framed({ [MARK]: 'root', value: bin, segs: [64] }, 64);
    assert.equal((decode(ok) as Float64Array).length, 8);
    assert.throws(() => decode(framed({ [MARK]: 'root', value: bin, segs: [64] }, 64, 1e6)), /frame header of 1000000 bytes/);
    assert.throws(() => decode(framed({ [MARK]: 'root', value: bin, segs: [1e9] }, 64)), /segment 0 declares 1000000000 bytes/);
    assert.throws(() => decode(framed({ [MARK]: 'root', value: bin, segs: [8] }, 64)), /bytes after the last segment/);
    assert.throws(() => decode(framed({ [MARK]: 'root', value: bin, segs: [63] }, 64)), /not whole elements|after the last segment/);
    assert.throws(() => decode(framed({ [MARK]: 'root', value: { ...bin, type: 'toString' }, segs: [64] }, 64)), /unknown type/);
    assert.throws(() => decode(framed({ [MARK]: 'root', value: { ...bin, seg: 1 }, segs: [64] }, 64)), /segment 1 of 1/);
  });

  it('one segment cannot stand behind many values (memory would be markers x segment size)', () => {
    const bin = () => ({ [MARK]: 'bin', type: 'Uint8Array', seg: 0 });
    const bytes = framed({ [MARK]: 'root', value: Array.from({ length: 1000 }, bin), segs: [1 << 20] }, 1 << 20);
    assert.throws(
      () => decode(bytes),
      (e: unknown) => e instanceof ProtocolError && /segment 0 used twice/.test(e.message),
    );
    // The encoder's own sharing (one array twice) is one marker object, decoded once.
    const shared = new Float64Array(100_000);
    const back = decode(encode([shared, shared])) as Float64Array[];
    assert.equal(back[0], back[1]);
  });

  it('garbage is a ProtocolError (or the empty payload a SerializationError), never a crash', () => {
    assert.throws(() => decode(new Uint8Array([0xff, 0x0f, 0x99])), ProtocolError);
    assert.throws(() => decode(new Uint8Array([0x4a, 0x7b])), ProtocolError);
    assert.throws(() => decode(new Uint8Array([0x56, 1])), ProtocolError);
    assert.throws(() => decode(new Uint8Array(0)), SerializationError);
  });
});

// --- property-based fuzzing ------------------------------------------------------------------

/** How much a decoded value holds: array lengths walked densely, binary bytes, entries. */
function footprint(v: unknown, seen = new Set<object>()): number {
  if (typeof v !== 'object' || v === null || seen.has(v)) return 1;
  seen.add(v);
  if (ArrayBuffer.isView(v)) return v.byteLength;
  if (v instanceof ArrayBuffer) return v.byteLength;
  if (v instanceof Matrix) return v.data.byteLength;
  let n = 1;
  if (v instanceof Map) for (const [k, x] of v) n += footprint(k, seen) + footprint(x, seen);
  else if (v instanceof Set) for (const x of v) n += footprint(x, seen);
  else for (const k of Object.keys(v)) n += footprint((v as Record<string, unknown>)[k], seen);
  return n;
}

/** Values that travel: what the encoder produces is the fuzz's seed corpus. */
const travelling = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.double(),
    fc.string(),
    fc.boolean(),
    fc.constant(undefined),
    fc.bigInt(),
    fc.uint8Array({ maxLength: 64 }),
    fc.float64Array({ maxLength: 16 }),
    fc.array(tie('value'), { maxLength: 6 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 5 }),
    fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 })).map(([r, c]) => new Matrix(r, c, new Float64Array(r * c).fill(1.5))),
    fc.sparseArray(tie('value'), { maxLength: 100, maxNumElements: 3 }),
  ),
})).value;

/** A byte-level mutation of a valid payload: flips, overwrites, truncation, growth. */
const mutated = fc
  .tuple(
    travelling,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.option(fc.uint8Array({ maxLength: 32 }), { nil: undefined }),
  )
  .map(([v, edits, cut, tail]) => {
    let b = Uint8Array.from(encode(v));
    for (const [at, byte] of edits) if (b.length) b[at % b.length] = byte;
    if (cut !== undefined && b.length) b = b.subarray(0, cut % (b.length + 1));
    if (tail) b = Uint8Array.from([...b, ...tail]);
    return b;
  });

/** Crafted marker payloads: any marker kind with any fields, in or out of a frame. */
const markerPayload = fc
  .tuple(
    fc.constantFrom('ref', 'matrix', 'buffer', 'bare', 'bin', 'root', 'other'),
    fc.dictionary(
      fc.constantFrom('rows', 'cols', 'data', 'seg', 'type', 'bytes', 'props', 'id', 'value', 'segs'),
      fc.oneof(fc.integer({ min: -5, max: 1e9 }), fc.string({ maxLength: 16 }), fc.float64Array({ maxLength: 4 }), fc.array(fc.nat(1e9), { maxLength: 3 })),
    ),
    fc.boolean(),
    fc.nat(4096),
  )
  .map(([kind, fields, frame, segBytes]) => {
    const value = { [MARK]: kind, ...fields };
    if (!frame) return root(value);
    const h = serialize({ [MARK]: 'root', value, segs: [segBytes] });
    const out = new Uint8Array(((5 + h.length + 7) & ~7) + segBytes);
    out[0] = 0x56;
    new DataView(out.buffer).setUint32(1, h.length, true);
    out.set(h, 5);
    return out;
  });

/** Decodes; returns the footprint of what came back, or 0 for a refusal of the right kind. */
function decodeOrRefuse(bytes: Uint8Array): number {
  try {
    return footprint(decode(bytes, () => 'ref'));
  } catch (e) {
    if (e instanceof ProtocolError || e instanceof SerializationError) return 0;
    throw e;
  }
}

/**
 * `v` with each Matrix as a plain record, holes kept: the test's Matrix class (the package's
 * bundle) is another copy than the decoder's (sdk/matrix.ts), which deepStrictEqual tells apart.
 */
function comparable(v: unknown): unknown {
  if (v instanceof Matrix) return { matrix: [v.rows, v.cols, v.data] };
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    for (const k of Object.keys(v)) out[Number(k)] = comparable(v[Number(k)]);
    return out;
  }
  const proto = typeof v === 'object' && v !== null ? (Object.getPrototypeOf(v) as object | null) : undefined;
  if (proto === Object.prototype || proto === null) {
    const out = Object.create(proto) as Record<string, unknown>;
    for (const [k, x] of Object.entries(v as object)) Object.defineProperty(out, k, { value: comparable(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

/** Bytes of output allowed per byte of input (a float64 from a 1-byte V8 tag, keys, headers). */
const PER_BYTE = 64;

describe('fuzzing (fast-check)', () => {
  /** Runs a property; logs how many inputs it tried (the counts are reported with the suite). */
  const run = (name: string, prop: fc.IProperty<never>, numRuns: number) => {
    fc.assert(prop as fc.IProperty<unknown>, { numRuns, seed: 20261126 });
    console.log(`fuzz: ${name}: ${numRuns} inputs`);
  };

  it('decode: valid payloads round-trip; mutated, random and crafted ones decode within bounds or are refused', () => {
    run(
      'round trip',
      fc.property(travelling, (v) => {
        // Valid values pass the decoder's checks (the pre-scan of V8's format included) unchanged.
        assert.deepStrictEqual(comparable(decode(encode(v))), comparable(v));
      }) as never,
      500,
    );
    for (const [name, arb] of [
      ['mutated payloads', mutated],
      ['random bytes', fc.uint8Array({ minLength: 1, maxLength: 512 })],
      ['crafted markers', markerPayload],
    ] as const) {
      run(
        name,
        fc.property(arb, (bytes) => {
          const n = decodeOrRefuse(bytes);
          assert.ok(n <= PER_BYTE * bytes.length + 64, `${bytes.length} bytes decoded to a value of footprint ${n}`);
        }) as never,
        2000,
      );
    }
  });

  const goodEnvelope = () => ({
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'job/AAAAAAAAAAAAAAAAAAAAAA',
    taskId: 't-1',
    fn: 'f',
    args: { kind: 'inline', bytes: new Uint8Array([0x4a, 0x5b, 0x5d]) },
    deps: { d: { kind: 'stored', key: 'volley/jobs/job/AAAAAAAAAAAAAAAAAAAAAA/d', size: 3 } },
    resultKey: 'volley/jobs/job/AAAAAAAAAAAAAAAAAAAAAA/t-1',
    inlineLimit: 100,
  });
  const TASK_FIELDS = new Set(['v', 'kind', 'job', 'taskId', 'fn', 'module', 'args', 'deps', 'resultKey', 'inlineLimit']);
  const PAYLOAD_FIELDS = new Set(['kind', 'bytes', 'key', 'size']);

  it('the envelope validator accepts nothing outside the contract: extra, inherited or ill-typed fields', () => {
    const anyJson = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.nat(), { maxLength: 2 }),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.nat(), { maxKeys: 2 }),
    );
    const edit = fc.tuple(
      fc.constantFrom('', 'args', 'deps.d'),
      fc.oneof(fc.constantFrom(...TASK_FIELDS, ...PAYLOAD_FIELDS, '__proto__', 'constructor', 'extra'), fc.string({ maxLength: 8 })),
      fc.oneof(anyJson, fc.constant(undefined)),
    );
    run(
      'envelopes (edited JSON)',
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        // Edit the wire form (JSON text, as an invoker would send it), then parse it as the worker does.
        const wire = JSON.parse(JSON.stringify(toWire(goodEnvelope()))) as Record<string, Record<string, unknown>>;
        for (const [where, field, value] of edits) {
          const deps = wire.deps as Record<string, Record<string, unknown>> | undefined;
          const target = where === '' ? wire : where === 'args' ? wire.args : typeof deps === 'object' && deps !== null ? deps.d : undefined;
          if (typeof target !== 'object' || target === null) continue;
          if (value === undefined) delete target[field];
          else Object.defineProperty(target, field, { value, enumerable: true, writable: true, configurable: true });
        }
        let env: Record<string, unknown>;
        try {
          env = validateTaskEnvelope(fromWire(JSON.parse(JSON.stringify(wire)))) as unknown as Record<string, unknown>;
        } catch (e) {
          assert.ok(e instanceof ProtocolError, `${(e as Error).name}: ${(e as Error).message}`);
          return;
        }
        // Accepted: then every field is in the contract, own, and of its type.
        for (const k of Object.keys(env)) assert.ok(TASK_FIELDS.has(k), `accepted field ${k}`);
        assert.equal(Object.getPrototypeOf(env), Object.prototype);
        for (const p of [env.args, ...Object.values(env.deps as object)] as Record<string, unknown>[]) {
          for (const k of Object.keys(p)) assert.ok(PAYLOAD_FIELDS.has(k), `accepted payload field ${k}`);
          if (p.kind === 'inline') assert.ok(p.bytes instanceof Uint8Array);
          else assert.ok(typeof p.key === 'string' && Number.isSafeInteger(p.size) && (p.size as number) >= 0);
        }
        for (const f of ['job', 'taskId', 'fn', 'resultKey'] as const) assert.equal(typeof env[f], 'string');
        assert.ok(Number.isSafeInteger(env.inlineLimit) && (env.inlineLimit as number) >= 0);
      }) as never,
      3000,
    );

    run(
      'envelopes (arbitrary values)',
      fc.property(fc.anything(), (x) => {
        try {
          validateTaskEnvelope(x);
        } catch (e) {
          assert.ok(e instanceof ProtocolError);
          return;
        }
        assert.fail('an arbitrary value was accepted as an envelope');
      }) as never,
      2000,
    );

    run(
      'Lambda requests',
      fc.property(
        fc.record(
          {
            v: fc.constantFrom(1, 2),
            kind: fc.constantFrom('invoke', 'x'),
            task: fc.constantFrom({}, null),
            timeoutMs: fc.oneof(fc.double(), fc.integer()),
            memoryMB: fc.oneof(fc.double(), fc.integer()),
          },
          { requiredKeys: [] },
        ),
        (r) => {
          try {
            const ok = validateLambdaRequest(r);
            assert.ok(Number.isInteger(ok.timeoutMs) && ok.timeoutMs >= 1 && ok.timeoutMs <= 900_000);
            assert.ok(Number.isInteger(ok.memoryMB) && ok.memoryMB >= 128 && ok.memoryMB <= 10_240);
          } catch (e) {
            assert.ok(e instanceof ProtocolError);
          }
        },
      ) as never,
      2000,
    );

    run(
      'result envelopes',
      fc.property(
        fc.record(
          {
            v: fc.constant(PROTOCOL_VERSION),
            kind: fc.constantFrom('value', 'stored', 'error', 'x'),
            taskId: fc.string({ maxLength: 4 }),
            bytes: fc.oneof(fc.uint8Array({ maxLength: 4 }), fc.string()),
            key: fc.string({ maxLength: 4 }),
            size: fc.oneof(fc.integer(), fc.double()),
            error: fc.anything(),
            fault: fc.constantFrom('user', 'infrastructure', 'x'),
            timing: fc.constantFrom({ fetchMs: 0, runMs: 1, storeMs: 2 }, {}),
            extra: fc.nat(),
          },
          { requiredKeys: ['v', 'kind', 'timing'] },
        ),
        (r) => {
          try {
            const ok = validateResultEnvelope(r) as unknown as Record<string, unknown>;
            assert.ok(!('extra' in ok));
          } catch (e) {
            assert.ok(e instanceof ProtocolError);
          }
        },
      ) as never,
      2000,
    );
  });
});
