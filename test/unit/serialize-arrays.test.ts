/**
 * Arrays keep what V8's serializer keeps of them (their holes and their named properties, such
 * as `a.label`) when they hold a ref or another marker, as they do without one: a value with a
 * ref inside comes back as the same value would without the ref. The walk copies an array that
 * holds a marker; the copy must not drop its named properties, and a ref, a function or a class
 * instance among them is treated as anywhere else. A sparse array costs its elements, not its
 * length, to walk.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { ObjectRef, SerializationError } from 'volley';
import { decode, encode, encodeArgs } from '../../sdk/serialize.js';

const owner = { jobId: 'j' };
const ref = (id: string) => new ObjectRef(id, owner);

/** Encodes `value` as the one argument of a task, and decodes it as the worker does, refs resolved by `values`. */
function asArgument(value: unknown, values: Record<string, unknown> = {}): { back: unknown; found: string[] } {
  const found: string[] = [];
  const bytes = encodeArgs([value], (r, path) => found.push(`${r.id}@${path}`));
  const back = (decode(bytes, (id) => values[id]) as unknown[])[0];
  return { back, found };
}

/** What V8's serializer makes of `v`: the reference for a value without refs. */
const v8Trip = (v: unknown): unknown => deserialize(serialize(v));

describe('serialization: arrays keep their named properties and holes beside refs', () => {
  it('an array holding a ref keeps its named properties, as it does without the ref', () => {
    const a: unknown[] & { label?: string } = [ref('r'), 2];
    a.label = 'x';
    const { back, found } = asArgument(a, { r: 5 });
    const without: unknown[] & { label?: string } = [5, 2];
    without.label = 'x';
    assert.deepStrictEqual(back, v8Trip(without));
    assert.equal((back as { label?: string }).label, 'x');
    assert.deepEqual(found, ['r@args[0][0]']);
  });

  it('so does an array holding an object that holds a ref, and a task result holding refs', () => {
    const a: unknown[] & { label?: string } = [{ n: ref('r') }, 2];
    a.label = 'y';
    assert.deepStrictEqual(asArgument(a, { r: 5 }).back, Object.assign([{ n: 5 }, 2], { label: 'y' }));
    const refs: string[] = [];
    const result = Object.assign([ref('r')], { meta: { k: 1 } });
    const back = decode(
      encode(result, 'result', undefined, (r) => refs.push(r.id)),
      () => 7,
    );
    assert.deepStrictEqual(back, Object.assign([7], { meta: { k: 1 } }));
    assert.deepEqual(refs, ['r']);
  });

  it('holes survive beside a ref, and a sparse array with a ref is walked by its elements, not its length', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const holey = [ref('r'), , 3];
    const { back } = asArgument(holey, { r: 5 });
    assert.equal((back as unknown[]).length, 3);
    assert.ok(!(1 in (back as unknown[])), 'the hole is kept, not filled with undefined');
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    assert.deepStrictEqual(back, v8Trip([5, , 3]));
    // Length 2^28, two elements: walked by index this took seconds (2^28 reads of holes).
    const sparse: unknown[] & { tag?: string } = [];
    sparse[2 ** 28] = ref('r');
    sparse[7] = 'seven';
    sparse.tag = 't';
    const far = asArgument(sparse, { r: { v: 1 } });
    const expected: unknown[] & { tag?: string } = [];
    expected[2 ** 28] = { v: 1 };
    expected[7] = 'seven';
    expected.tag = 't';
    assert.deepStrictEqual(far.back, expected);
    assert.deepEqual(far.found, [`r@args[0][${2 ** 28}]`]);
  });

  it('a ref among named properties is resolved, as in a plain object, and keeps the identities it shares', () => {
    const shared = { r: ref('r') };
    const a = Object.assign([shared, 1], { extra: ref('s'), again: shared });
    const { back, found } = asArgument(a, { r: 'R', s: 'S' });
    assert.deepStrictEqual(back, Object.assign([{ r: 'R' }, 1], { extra: 'S', again: { r: 'R' } }));
    const b = back as unknown[] & { again: unknown };
    assert.equal(b.again, b[0], 'one object in two places stays one object');
    assert.deepEqual(found, ['r@args[0][0].r', 's@args[0].extra']);
    // Without a ref among the elements: the array is sent as it is, its named ref resolved all the same.
    const only = asArgument(Object.assign([1, 2], { extra: ref('s') }), { s: 'S' });
    assert.deepStrictEqual(only.back, Object.assign([1, 2], { extra: 'S' }));
    assert.deepEqual(only.found, ['s@args[0].extra']);
  });

  it('what cannot travel is refused among named properties too, naming the path', () => {
    const refused = (value: unknown, path: string, what: RegExp) =>
      assert.throws(
        () => encode(value),
        (e: unknown) => e instanceof SerializationError && e.path === path && what.test(e.message),
      );
    // A function: V8 refuses it; the error names it instead of blaming a Proxy.
    refused(Object.assign([1], { fn: () => 1 }), 'value.fn', /^value\.fn is a function, which cannot be sent/);
    // A class instance: V8 would send it as a plain object, silently.
    class Point {
      x = 1;
    }
    refused(Object.assign([1], { p: new Point() }), 'value.p', /^value\.p is an instance of class Point/);
    refused([Object.assign([[1]], { deep: { p: new Point() } })], 'value[0].deep.p', /instance of class Point/);
    // A ref where refs are not allowed (a put() value).
    refused(Object.assign([1], { r: ref('r') }), 'value.r', /^value\.r is an ObjectRef/);
  });

  it('a Buffer or a null-prototype object among named properties comes back as what it is', () => {
    const bare = Object.assign(Object.create(null) as object, { k: 1 });
    const back = decode(encode(Object.assign([1], { buf: Buffer.from('hi'), bare }))) as unknown[] & { buf: unknown; bare: object };
    assert.ok(Buffer.isBuffer(back.buf));
    assert.equal(Object.getPrototypeOf(back.bare), null);
  });

  it('an own "__proto__" property of an array is copied as a property, not as its prototype', () => {
    const a = [ref('r')];
    Object.defineProperty(a, '__proto__', { value: { p: 1 }, enumerable: true, writable: true, configurable: true });
    const back = asArgument(a, { r: 5 }).back as unknown[];
    assert.equal(Object.getPrototypeOf(back), Array.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(back, '__proto__')?.value, { p: 1 });
  });

  it('an array that reaches itself through a named property comes back doing so, beside a marker', () => {
    const a: unknown[] & { self?: unknown } = [ref('r')];
    a.self = a;
    const back = asArgument(a, { r: 5 }).back as unknown[] & { self?: unknown };
    assert.equal(back[0], 5);
    assert.equal(back.self, back);
  });

  it('an array of a holey kind without holes (new Array(n) filled) is walked once, one with a named property twice', () => {
    // A getter counts the reads: one by the walk, one by V8's serializer, per pass.
    let reads = 0;
    const counted = {
      get g() {
        reads++;
        return 1;
      },
    };
    const filled = new Array<unknown>(2);
    filled[0] = ref('r');
    filled[1] = counted;
    asArgument(filled, { r: 5 });
    assert.equal(reads, 2, 'V8 writes it sparse, but it has no hole nor named property: no second pass');
    reads = 0;
    asArgument(Object.assign([ref('r'), counted], { label: 'x' }), { r: 5 });
    assert.equal(reads, 3, 'walked again by keys for its named property (found when the walk copied it, before V8)');
  });

  it('a value with no marker is still exactly V8 serialization, named properties and holes included', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    for (const v of [Object.assign([1, { a: 2 }], { label: 'x' }), [1, , { b: 3 }], Object.assign([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]], { n: 1 })]) {
      assert.deepEqual(Buffer.from(encode(v)), serialize(v));
    }
  });
});

// --- property: a value with refs comes back as the same value without them --------------------

/** Where a ref goes in a generated value; `build` makes it a ref, or the ref's value. */
class Slot {
  constructor(readonly id: number) {}
}

const REF_VALUES: Record<string, unknown> = { r0: 5, r1: { n: 1 }, r2: ['two', 2], r3: 'three' };

/** Named properties of arrays: never an index, nor `length`. */
const named = fc.constantFrom('label', 'x', 'meta', 'n1', '_');

const tree = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer(),
    fc.string({ maxLength: 6 }),
    fc.constant(undefined),
    fc.double(),
    fc.nat(3).map((i) => new Slot(i)),
    fc.uint8Array({ maxLength: 4 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie('value'), { maxKeys: 4, noNullPrototype: true }),
    fc.tuple(fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(named, tie('value'), { maxKeys: 3, noNullPrototype: true })).map(([a, props]) => Object.assign(a, props)),
    fc
      .tuple(fc.sparseArray(tie('value'), { maxLength: 40, maxNumElements: 3 }), fc.dictionary(named, tie('value'), { maxKeys: 2, noNullPrototype: true }))
      .map(([a, props]) => Object.assign(a, props)),
  ),
})).value;

/** A copy of a generated value (holes and named properties kept) with each Slot replaced by `slot(id)`. */
function build(v: unknown, slot: (id: string) => unknown): unknown {
  if (v instanceof Slot) return slot(`r${v.id}`);
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (const k of Object.keys(v)) (out as unknown as Record<string, unknown>)[k] = build((v as unknown as Record<string, unknown>)[k], slot);
    return out;
  }
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: build(x, slot), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

describe('serialization: a value with refs inside comes back as the same value without them (fast-check)', () => {
  it('as an argument and as a task result; without refs, the bytes are V8 serialization itself', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const plain = build(t, (id) => REF_VALUES[id]);
        const expected = v8Trip(plain);
        const withRefs = build(t, (id) => ref(id));
        const arg = (
          decode(
            encodeArgs([withRefs], () => {}),
            (id) => REF_VALUES[id],
          ) as unknown[]
        )[0];
        assert.deepStrictEqual(arg, expected);
        const result = decode(
          encode(withRefs, 'result', undefined, () => {}),
          (id) => REF_VALUES[id],
        );
        assert.deepStrictEqual(result, expected);
        // Compact ('J') payloads aside, a value with no marker (none is generated) is sent as V8 serializes it.
        const bytes = encode(plain);
        if (bytes[0] !== 0x4a) assert.deepEqual(Buffer.from(bytes), serialize(plain));
      }),
      { numRuns: 400, seed: 20261127 },
    );
  });
});
