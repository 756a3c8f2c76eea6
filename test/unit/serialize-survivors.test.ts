/**
 * The encoder's walk where a user would notice a slip: the path and message of what it refuses,
 * identity (a structure that contains itself, or holds one value twice, comes back so), values
 * that must come back as what they were (a Matrix inside a Map), and the payload itself (a
 * value without markers is exactly V8's serialization of it, as the codec's header documents).
 *
 * This file imports the codec without the library's entry point on purpose: the actor module
 * is not loaded here, as in a process that never touches actors (the handle's round trip is in
 * serialize.test.ts, which loads it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serialize } from 'node:v8';
import { SerializationError } from '../../sdk/errors.js';
import { Matrix } from '../../sdk/matrix.js';
import { ObjectRef } from '../../sdk/ref.js';
import { decode, encode, encodeArgs } from '../../sdk/serialize.js';

const FIX_CLASS = 'class instances would lose their prototype; send a plain object, an array, a typed array or a Matrix';

/** Asserts that encoding `v` is a SerializationError at `path` with exactly this message. */
function refused(v: unknown, path: string, message: string) {
  assert.throws(
    () => encode(v),
    (e: unknown) => {
      assert.ok(e instanceof SerializationError, `a SerializationError, not ${String(e)}`);
      assert.equal(e.message, message);
      assert.equal(e.path, path);
      return true;
    },
  );
}

const matrix = (x: number) => new Matrix(1, 1, new Float64Array([x]));

describe('encoder: what it refuses, and where', () => {
  it("a Matrix whose data is a Float64Array subclass is refused at the data's path", () => {
    class Samples extends Float64Array {}
    const m = new Matrix(1, 1, new Samples(1));
    refused({ m }, 'value.m.data', `value.m.data is an instance of class Samples, which cannot be sent to a task or stored: ${FIX_CLASS}`);
    refused(m, 'value.data', `value.data is an instance of class Samples, which cannot be sent to a task or stored: ${FIX_CLASS}`);
  });

  it("a plain object with the actor handle's symbol key is refused for its symbol key, not taken for a handle", () => {
    const forged = { [Symbol.for('volley.actorHandle')]: { name: 'ps', mode: 'memory' } };
    refused([forged], 'value[0]', 'value[0] is an object with symbol keys, which cannot be sent to a task or stored: symbol-keyed properties would be dropped; use string keys');
  });

  it('an actor handle is refused, saying why, when the actor module is not loaded', () => {
    const handle = Object.assign(Object.create(null) as object, { [Symbol.for('volley.actorHandle')]: { name: 'ps', mode: 'memory' } });
    refused([handle], 'value[0]', 'value[0] is an actor handle, which cannot be sent to a task or stored: the actor module is not loaded');
  });

  it("V8's refusal is quoted whole in the message, less a final period only", () => {
    let reads = 0;
    // The walk reads the getter once and lets it through; V8's read throws.
    const v = {
      g: {
        get x() {
          if (reads++) throw new Error('v1.2 broke.');
          return 1;
        },
      },
      y: [1],
    };
    assert.throws(
      () => encode(v),
      (e: unknown) => {
        assert.ok(e instanceof SerializationError);
        assert.equal(e.path, 'value');
        assert.match(e.message, /^value cannot be serialized: v1\.2 broke; V8's structured clone refused something inside it/);
        assert.equal((e.cause as Error).message, 'v1.2 broke.');
        return true;
      },
    );
  });
});

describe('encoder: the payload', () => {
  it("a value without markers is exactly V8's serialization of it (no wrapper, so no extra bytes)", () => {
    const values: unknown[] = [
      { a: [1, 2, 3], s: new Set(['x']), d: new Date(0), n: NaN },
      new Map<unknown, unknown>([
        [1, 'one'],
        [NaN, [2]],
      ]),
      Array.from({ length: 20 }, (_, i) => i),
      'y'.repeat(65),
    ];
    for (const v of values) assert.deepEqual(Buffer.from(encode(v)), serialize(v));
  });

  it('a structure that contains itself and holds no marker is sent as it is: named properties of an array too', () => {
    const a: unknown[] & { note?: string } = [1, 'x'];
    a.note = 'kept';
    a.push(a, { up: a });
    assert.deepEqual(Buffer.from(encode(a)), serialize(a));
    const back = decode(encode(a)) as unknown[] & { note?: string };
    assert.equal(back.note, 'kept');
    assert.equal(back[2], back);
    assert.equal((back[3] as { up: unknown }).up, back);
    const args = decode(encodeArgs([a, 2], () => assert.fail('no refs here'))) as [unknown[] & { note?: string }, number];
    assert.equal(args[0].note, 'kept', 'as an argument too');
    assert.equal(args[0][2], args[0]);
    const m = new Map<string, unknown>([['n', NaN]]);
    m.set('self', m);
    assert.deepEqual(Buffer.from(encode(m)), serialize(m));
  });
});

describe('encoder: identity and values through the trip', () => {
  it('an array or object that contains itself before a NaN comes back containing itself', () => {
    const a: unknown[] = [];
    a.push(a, NaN);
    const back = decode(encode(a)) as unknown[];
    assert.equal(back[0], back);
    assert.ok(Number.isNaN(back[1]));
    const o: Record<string, unknown> = {};
    o.self = o;
    o.n = NaN;
    const r = decode(encode(o)) as Record<string, unknown>;
    assert.equal(r.self, r);
    assert.ok(Number.isNaN(r.n));
  });

  it('a Map holding a Matrix as a value gives it back as a Matrix', () => {
    const back = decode(encode(new Map<string, unknown>([['m', matrix(5)]]))) as Map<string, unknown>;
    const m = back.get('m');
    assert.ok(m instanceof Matrix, 'a Matrix, not a plain object');
    assert.equal(m.get(0, 0), 5);
    const keyed = decode(encode(new Map<unknown, unknown>([[1, { inner: matrix(6) }]]))) as Map<unknown, { inner: Matrix }>;
    assert.ok(keyed.get(1)?.inner instanceof Matrix);
  });

  it('a Map whose first marker is in a later entry keeps each entry once, in order', () => {
    const m = matrix(7);
    const back = decode(
      encode(
        new Map<unknown, unknown>([
          ['a', 1],
          ['b', [2]],
          [m, 'as a key'],
          ['c', 3],
        ]),
      ),
    ) as Map<unknown, unknown>;
    const keys = [...back.keys()];
    assert.equal(back.size, 4);
    assert.deepEqual([keys[0], keys[1], keys[3]], ['a', 'b', 'c']);
    assert.ok(keys[2] instanceof Matrix);
    assert.deepEqual([back.get('a'), back.get('b'), back.get(keys[2]), back.get('c')], [1, [2], 'as a key', 3]);
  });

  it('a Map that contains itself comes back containing itself', () => {
    const m = new Map<unknown, unknown>();
    m.set('self', m);
    const back = decode(encode({ m })) as { m: Map<unknown, unknown> };
    assert.equal(back.m.get('self'), back.m);
  });

  // Each structure refers to itself before the element that makes the walk copy it (a marker,
  // or in a Map or Set a NaN): the copy must be what the self-reference points at.
  it('an array, object, Map or Set that contains itself before a marker comes back containing itself', () => {
    const a: unknown[] = [];
    a.push(a, matrix(1));
    const ba = decode(encode(a)) as [unknown, Matrix];
    assert.ok(Array.isArray(ba));
    assert.equal(ba[0], ba);
    assert.ok(ba[1] instanceof Matrix);
    assert.ok(a[0] === a && a[1] instanceof Matrix, 'the input is left as it was');

    const o: Record<string, unknown> = { a: 1, list: [2] };
    o.self = o;
    o.m = matrix(2);
    const bo = decode(encode(o)) as Record<string, unknown>;
    assert.equal(bo.self, bo);
    assert.ok(bo.m instanceof Matrix);
    assert.deepEqual([bo.a, bo.list], [1, [2]], 'the properties before the cycle are kept');

    for (const last of [NaN, matrix(3)]) {
      const s = new Set<unknown>();
      s.add(s).add(last);
      const bs = decode(encode(s)) as Set<unknown>;
      assert.ok(bs.has(bs), 'the Set holds itself');
      assert.equal(bs.size, 2);
    }

    const m = new Map<unknown, unknown>();
    m.set('self', m).set('m', matrix(4));
    m.set(m, 'as a key');
    const bm = decode(encode(m)) as Map<unknown, unknown>;
    assert.equal(bm.get('self'), bm);
    assert.ok(bm.get('m') instanceof Matrix);
    assert.equal(bm.get(bm), 'as a key');
    assert.deepEqual([...bm.keys()].slice(0, 2), ['self', 'm']);
  });

  it('a self-reference deeper inside, before the marker, comes back to the same structure', () => {
    const a: unknown[] = [];
    a.push([a], { up: a }, matrix(1));
    const ba = decode(encode(a)) as [unknown[], { up: unknown }, Matrix];
    assert.equal(ba[0][0], ba);
    assert.equal(ba[1].up, ba);

    const o: Record<string, unknown> = {};
    o.inner = { list: [o], map: new Map([['o', o]]) };
    o.m = matrix(2);
    const bo = decode(encode(o)) as { inner: { list: unknown[]; map: Map<string, unknown> }; m: Matrix };
    assert.equal(bo.inner.list[0], bo);
    assert.equal(bo.inner.map.get('o'), bo);
    assert.ok(bo.m instanceof Matrix);

    // Two structures that refer to each other, the marker in the second.
    const x: Record<string, unknown> = {};
    const y: Record<string, unknown> = { x };
    x.y = y;
    y.m = matrix(3);
    const bx = decode(encode(x)) as { y: { x: unknown; m: Matrix } };
    assert.equal(bx.y.x, bx);
    assert.ok(bx.y.m instanceof Matrix);
  });

  it('a structure held twice beside a marker comes back as one structure held twice', () => {
    const bare = Object.assign(Object.create(null) as object, { z: 1 });
    const plain = [[1, 2], { k: 1 }, new Map([[1, 2]]), new Set([3]), bare];
    const marked = [[matrix(1)], { m: matrix(2) }, new Map([[1, matrix(3)]]), new Set([matrix(4)])];
    const back = decode(encode([...plain, ...marked, ...plain, ...marked, matrix(5)])) as unknown[];
    const n = plain.length + marked.length;
    for (let i = 0; i < n; i++) assert.equal(back[i], back[n + i], `item ${i} is one object held twice`);
    assert.deepEqual(back.slice(0, 4), plain.slice(0, 4));
    assert.equal(Object.getPrototypeOf(back[4]), null);
    assert.ok((back[5] as Matrix[])[0] instanceof Matrix);
    assert.ok((back[6] as { m: Matrix }).m instanceof Matrix);
    assert.ok((back[7] as Map<number, unknown>).get(1) instanceof Matrix);
    assert.ok([...(back[8] as Set<unknown>)][0] instanceof Matrix);
  });

  it('an array without markers keeps its named properties, also beside a marker', () => {
    const list: unknown[] & { note?: string } = [1, NaN, [2]];
    list.note = 'kept';
    const back = decode(encode({ list, m: matrix(1) })) as { list: unknown[] & { note?: string }; m: Matrix };
    assert.equal(back.list.note, 'kept');
    assert.ok(back.m instanceof Matrix);
  });

  it('among the arguments, a structure that contains itself before a ref comes back containing itself', () => {
    const a: unknown[] = [];
    a.push(a, new ObjectRef('a-1', { jobId: 'j' }));
    const ids: string[] = [];
    const bytes = encodeArgs([a], (r) => ids.push(r.id));
    assert.deepEqual(ids, ['a-1']);
    const [back] = decode(bytes, () => 'VALUE') as [unknown[]];
    assert.equal(back[0], back);
    assert.equal(back[1], 'VALUE');
  });
});
