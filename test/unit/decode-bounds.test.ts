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
import { decode, encode } from '../../sdk/serialize.js';

const MARK = '\u0000volley';
const root = (value: unknown, extra: Record<string, unknown> = {}) => new Uint8Array(serialize({ [MARK]: 'root', value, ...extra }));

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
  const w = new Worker(code, { eval: true, workerData: { url: new URL('../../sdk/serialize.js', import.meta.url).href, bytes } });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      void w.terminate();
      resolve('unfinished');
    }, deadlineMs);
    w.once('message', (m) => {
      clearTimeout(t);
      void w.terminate();
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

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
        const back = decode(encode(v));
        assert.equal(typeof back, typeof v);
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
