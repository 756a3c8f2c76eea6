import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Matrix, ObjectRef, SerializationError } from 'volley';
import { decode, encode, encodeArgs } from '../../sdk/serialize.js';
// The actor module sets the codec's handle form (the `volley` import above is a copy of its own).
import '../../sdk/actor.js';

const owner = { jobId: 'j' };

describe('serialization', () => {
  it('round-trips Map, Set, Date, BigInt, nested structures, cycles and special numbers', () => {
    const v: Record<string, unknown> = {
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2, { b: [1, 2] }],
      ]),
      set: new Set(['x', 3]),
      date: new Date('2026-01-02T03:04:05Z'),
      big: 12345678901234567890n,
      nums: [-0, NaN, Infinity, 1.5, undefined, null],
      nested: { deep: { deeper: ['ok'] } },
      bare: Object.assign(Object.create(null), { k: 1 }),
    };
    v.self = v;
    const back = decode(encode(v)) as typeof v;
    assert.deepEqual(back.map, v.map);
    assert.deepEqual(back.set, v.set);
    assert.equal((back.date as Date).toISOString(), '2026-01-02T03:04:05.000Z');
    assert.equal(back.big, 12345678901234567890n);
    assert.ok(Object.is((back.nums as number[])[0], -0));
    assert.ok(Number.isNaN((back.nums as number[])[1]));
    assert.deepEqual(back.nested, v.nested);
    assert.equal(Object.getPrototypeOf(back.bare), null);
    assert.equal(back.self, back);
  });

  it('moves typed arrays as raw bytes, not JSON numbers', () => {
    const data = new Float64Array(100_000).map((_, i) => Math.sqrt(i) + 0.123456789);
    const bytes = encode(data);
    assert.ok(bytes.length < 800_000 + 128, `encoded ${bytes.length} bytes for 800,000 bytes of floats`);
    const back = decode(bytes);
    assert.ok(back instanceof Float64Array);
    assert.deepEqual(back, data);
    for (const T of [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, BigInt64Array, BigUint64Array] as const) {
      const a = T === BigInt64Array || T === BigUint64Array ? new T([1n, 2n]) : new (T as Int8ArrayConstructor)([1, 2, 3]);
      const b = decode(encode(a)) as typeof a;
      assert.equal(b.constructor, T);
      assert.deepEqual(b, a);
    }
  });

  it('frames large binary data: every kind round-trips, shared references stay shared, reads are independent', () => {
    const big = new Float64Array(20_000).map((_, i) => i / 3);
    const value = {
      big,
      again: big,
      buf: Buffer.alloc(100_000, 7),
      ab: new Uint8Array(70_000).fill(3).buffer,
      dv: new DataView(new ArrayBuffer(80_000)),
      m: new Matrix(300, 300, new Float64Array(90_000).fill(0.5)),
      small: new Int16Array([1, -2]),
    };
    const shared: Uint8Array[] = [];
    const bytes = encode(value, 'value', (n) => {
      const b = new Uint8Array(new SharedArrayBuffer(n));
      shared.push(b);
      return b;
    });
    assert.equal(shared.length, 1, 'one allocation, from the given allocator');
    assert.equal(bytes.buffer, shared[0]!.buffer);
    const back = decode(bytes) as typeof value;
    assert.deepEqual(back.big, big);
    assert.equal(back.again, back.big);
    assert.ok(Buffer.isBuffer(back.buf) && back.buf.length === 100_000 && back.buf.every((x) => x === 7));
    assert.ok(back.ab instanceof ArrayBuffer && new Uint8Array(back.ab).every((x) => x === 3));
    assert.ok(back.dv instanceof DataView && back.dv.byteLength === 80_000);
    assert.ok(back.m instanceof Matrix && back.m.get(299, 299) === 0.5);
    assert.deepEqual(back.small, new Int16Array([1, -2]));
    back.big[0] = 42;
    assert.equal((decode(bytes) as typeof value).big[0], 0, 'a second read is not changed by the first');
    assert.ok(!(back.big.buffer instanceof SharedArrayBuffer), "values never live in the store's shared memory");
  });

  it('keeps Buffers as Buffers and Matrix as Matrix', () => {
    const back = decode(encode({ buf: Buffer.from('héllo'), m: new Matrix(2, 2, new Float64Array([1, 2, 3, 4])) })) as { buf: Buffer; m: Matrix };
    assert.ok(Buffer.isBuffer(back.buf));
    assert.equal(back.buf.toString(), 'héllo');
    assert.ok(back.m instanceof Matrix);
    assert.equal(back.m.get(1, 0), 3);
  });

  it('never aliases shared memory it decodes from', () => {
    const src = encode(new Float64Array([1, 2, 3]));
    const shared = new Uint8Array(new SharedArrayBuffer(src.length));
    shared.set(src);
    const a = decode(shared) as Float64Array;
    a[0] = 99;
    assert.deepEqual(decode(shared), new Float64Array([1, 2, 3]));
  });

  it('rejects what would not survive, naming the path and the fix', () => {
    class Point {
      constructor(readonly x: number) {}
    }
    const cases: Array<[unknown, RegExp, string]> = [
      [{ f: () => 1 }, /a function/, 'value.f'],
      [[1, Symbol('s')], /a symbol/, 'value[1]'],
      [{ p: new Point(1) }, /instance of class Point.*plain object/, 'value.p'],
      [{ [Symbol('k')]: 1 }, /symbol keys/, 'value'],
      [new Map([['k', new Point(2)]]), /class Point/, 'value.get("k")'],
      [{ e: new Error('x') }, /an Error/, 'value.e'],
      [Promise.resolve(1), /class Promise/, 'value'],
      [{ r: new ObjectRef('a-1', owner) }, /refs can be passed as task arguments/, 'value.r'],
    ];
    for (const [v, re, path] of cases) {
      assert.throws(
        () => encode(v),
        (e: unknown) => e instanceof SerializationError && re.test(e.message) && e.path === path,
        `for ${path}`,
      );
    }
  });

  it('collects refs nested in arrays and plain objects and resolves them on decode', () => {
    const r1 = new ObjectRef('a-1', owner);
    const r2 = new ObjectRef('b-2', owner);
    const found: string[] = [];
    const bytes = encodeArgs([r1, { list: [1, r2, { again: r1 }] }, 'plain'], (ref, path) => found.push(`${ref.id}@${path}`));
    assert.deepEqual(found, ['a-1@args[0]', 'b-2@args[1].list[1]']);
    const values: Record<string, unknown> = { 'a-1': 'ONE', 'b-2': [2] };
    assert.deepEqual(
      decode(bytes, (id) => values[id]),
      ['ONE', { list: [1, [2], { again: 'ONE' }] }, 'plain'],
    );
  });

  it('encodes tiny values compactly and exactly, and everything else through V8', () => {
    const tiny: unknown[] = [[], [1, 'two', true, null, 2.5], 42, 'héllo ✓', null, false];
    for (const v of tiny) {
      const bytes = encode(v);
      assert.equal(bytes[0], 0x4a, `compact for ${JSON.stringify(v)}`);
      assert.ok(bytes.length < 40);
      assert.deepEqual(decode(bytes), v);
    }
    // biome-ignore lint/suspicious/noSparseArray: a hole is what this test sends
    const sparse = [1, , 3];
    const extra = Object.assign([1, 2], { note: 'x' });
    const exact: unknown[] = [-0, NaN, Infinity, undefined, 1n, [undefined], sparse, extra, 'x'.repeat(65), Array(17).fill(1), [[1]], new Date(0)];
    for (const v of exact) {
      const bytes = encode(v);
      assert.notEqual(bytes[0], 0x4a, `not compact for ${String(v)}`);
      assert.deepEqual(decode(bytes), v);
    }
    assert.ok(Object.is(decode(encode(-0)), -0));
    assert.equal((decode(encode(extra)) as typeof extra).note, 'x');
  });

  it('refuses refs inside a Map or Set at the call site, naming the path (they would not be resolved)', () => {
    const r = new ObjectRef('a-1', owner);
    const refused = (args: unknown[], path: string, where: string) =>
      assert.throws(
        () => encodeArgs(args, () => undefined),
        (e: unknown) => e instanceof SerializationError && e.path === path && e.message.includes(`an ObjectRef inside ${where}`) && /build the Map or Set in the task/.test(e.message),
        `for ${path}`,
      );
    refused([new Map([['k', r]])], 'args[0].get("k")', 'a Map');
    refused([1, new Map([[r, 1]])], 'args[1].<key 0>', 'a Map');
    refused([{ s: new Set([1, r]) }], 'args[0].s.<item 1>', 'a Set');
    refused([new Map([['k', { deep: [r] }]])], 'args[0].get("k").deep[0]', 'a Map');
    // The same ref also among the arguments, or a structure holding it seen there first.
    refused([r, new Set([r])], 'args[1].<item 0>', 'a Set');
    const holder = { list: [r] };
    refused([holder, new Map([['h', holder]])], 'args[1].get("h")', 'a Map');
    // Refs after a Map or Set among the arguments are still collected.
    const after: string[] = [];
    encodeArgs([new Map([['k', 1]]), r, new Set([2]), [r]], (ref, path) => after.push(`${ref.id}@${path}`));
    assert.deepEqual(after, ['a-1@args[1]']);
    // Refs beside a Map are fine, and a Map without refs still travels.
    const found: string[] = [];
    const bytes = encodeArgs([r, new Map([['k', [1, 2]]]), new Set(['x'])], (ref, path) => found.push(`${ref.id}@${path}`));
    assert.deepEqual(found, ['a-1@args[0]']);
    assert.deepEqual(
      decode(bytes, () => 'ONE'),
      ['ONE', new Map([['k', [1, 2]]]), new Set(['x'])],
    );
  });

  it('round-trips a Set that contains itself', () => {
    const s = new Set<unknown>([1]);
    s.add(s);
    const back = decode(encode({ s })) as { s: Set<unknown> };
    assert.ok(back.s.has(back.s));
    assert.ok(back.s.has(1));
  });

  it('does not copy argument arrays that hold no refs (only arrays with a ref inside are copied)', () => {
    const inner = [1, 2, 3];
    const outer = [inner, [4], { x: [5] }];
    const mine = new Set<unknown>([inner, outer, outer[1], (outer[2] as { x: unknown }).x]);
    const slice = Array.prototype.slice;
    let copied = 0;
    Array.prototype.slice = function (this: unknown[], ...a: [number?, number?]) {
      if (mine.has(this)) copied++;
      return slice.apply(this, a);
    };
    try {
      const bytes = encodeArgs([outer, new Float64Array(4)], () => assert.fail('no refs here'));
      assert.deepEqual(decode(bytes), [[[1, 2, 3], [4], { x: [5] }], new Float64Array(4)]);
      assert.equal(copied, 0, 'no input array was copied');
      const r = new ObjectRef('a-1', owner);
      const withRef = [1, [r]];
      mine.add(withRef);
      encodeArgs([withRef], () => undefined);
      assert.equal(copied, 1, 'the array holding a ref is copied (the count sees copies)');
    } finally {
      Array.prototype.slice = slice;
    }
  });
});

describe('serialization: edges', () => {
  const refused = (v: unknown, path: string, re: RegExp) =>
    assert.throws(
      () => encode(v),
      (e: unknown) => e instanceof SerializationError && e.path === path && re.test(e.message),
      path,
    );

  it('says what each refused value is and how to fix it', () => {
    refused([1, Symbol('s')], 'value[1]', /^value\[1\] is a symbol, which cannot be sent to a task or stored: use a string instead$/);
    refused([1, () => 1], 'value[1]', /is a function, .*make it a task with remote\(\)/);
    refused({ s: Symbol('s') }, 'value.s', /is a symbol/);
    refused({ [Symbol('k')]: 1 }, 'value', /is an object with symbol keys, .*use string keys$/);
    refused({ e: new TypeError('x') }, 'value.e', /is an Error \(TypeError\), .*send its message and name as strings instead$/);
    refused({ b: new SharedArrayBuffer(8) }, 'value.b', /is a SharedArrayBuffer, .*copy it into an ArrayBuffer or typed array$/);
    refused({ o: Object.create(Object.create(null)) }, 'value.o', /is an object with a custom prototype/);
    refused({ '\u0000volley': 1 }, 'value', /reserved key .*rename that key$/);
    refused(new Map([[1, () => 0]]), 'value.get(<key 0>)', /a function/);
    refused(
      new Map<unknown, unknown>([
        ['a', 1],
        [() => 0, 2],
      ]),
      'value.<key 1>',
      /a function/,
    );
    const m = new Matrix(1, 1, new Float64Array(1));
    (m as { data: unknown }).data = [1];
    refused({ m }, 'value.m.data', /is not a Float64Array, .*new Matrix\(rows, cols, data\)$/);
  });

  it('a value the walk lets through but V8 cannot clone (a Proxy) is still a SerializationError', () => {
    // A Proxy of a plain object looks plain to the walk (its prototype is Object.prototype).
    const proxy = new Proxy({ a: 1 }, {});
    refused({ x: proxy }, 'value', /^value cannot be serialized: .*could not be cloned; .*pass plain data/);
    assert.throws(
      () => encodeArgs([1, { x: proxy }], () => {}),
      (e: unknown) => e instanceof SerializationError && e.path === 'args' && /^args cannot be serialized: /.test(e.message) && e.cause instanceof Error,
    );
  });

  it('a 64-character string and a 16-item list are still compact; argument lists too', () => {
    assert.equal(encode('x'.repeat(64))[0], 0x4a);
    assert.equal(encode(Array(16).fill(1))[0], 0x4a);
    assert.equal(encodeArgs([1, 'a'], () => undefined)[0], 0x4a);
    assert.deepEqual(decode(encodeArgs([1, 'a'], () => undefined)), [1, 'a']);
  });

  it('frames binary data from 64 KiB on, not below', () => {
    assert.notEqual(encode(new Uint8Array(64 * 1024 - 1))[0], 0x56);
    assert.equal(encode(new Uint8Array(64 * 1024))[0], 0x56);
    assert.equal((decode(encode(new Uint8Array(64 * 1024))) as Uint8Array).length, 64 * 1024);
  });

  it('keeps Buffers, RegExps and null-prototype objects what they are wherever they sit', () => {
    assert.ok(Buffer.isBuffer(decode(encode(Buffer.from('hi')))));
    const back = decode(encode([1, Buffer.from('a'), { b: Buffer.from('b') }, /x+/g])) as [number, Buffer, { b: Buffer }, RegExp];
    assert.ok(Buffer.isBuffer(back[1]));
    assert.ok(Buffer.isBuffer(back[2].b));
    assert.equal(String(back[3]), '/x+/g');
    const bare = decode(encode({ o: Object.assign(Object.create(null), { a: 1, b: [2] }) })) as { o: Record<string, unknown> };
    assert.equal(Object.getPrototypeOf(bare.o), null);
    assert.deepEqual({ ...bare.o }, { a: 1, b: [2] });
    const map = decode(
      encode(
        new Map<string, unknown>([
          ['a', 1],
          ['b', Buffer.from('x')],
          ['c', 3],
        ]),
      ),
    ) as Map<string, unknown>;
    assert.deepEqual([...map.keys()], ['a', 'b', 'c']);
    assert.ok(Buffer.isBuffer(map.get('b')));
    assert.equal(map.get('c'), 3);
    const set = decode(encode(new Set<unknown>([1, Buffer.from('y')]))) as Set<unknown>;
    assert.equal(set.size, 2);
    assert.ok([...set].some((x) => Buffer.isBuffer(x)));
  });

  it('an array that contains itself beside a marker comes back containing itself, the marker revived', () => {
    const a: unknown[] = [new Matrix(1, 1, new Float64Array([7]))];
    a.push(a, { up: a });
    const back = decode(encode(a)) as [Matrix, unknown, { up: unknown }];
    assert.ok(back[0] instanceof Matrix && back[0].get(0, 0) === 7);
    assert.equal(back[1], back);
    assert.equal(back[2].up, back);
  });

  it('an instance of an Array subclass is refused, even a short list of numbers', () => {
    class Row extends Array<number> {}
    refused(Row.from([1, 2]), 'value', /is an instance of class Row, .*send a plain object, an array/);
  });

  it('a null-prototype object that contains itself comes back containing itself', () => {
    const o = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    o.self = o;
    o.list = [o, { up: o }];
    const back = decode(encode({ o })) as { o: Record<string, unknown> & { list: [unknown, { up: unknown }] } };
    assert.equal(Object.getPrototypeOf(back.o), null);
    assert.equal(back.o.self, back.o);
    assert.equal(back.o.list[0], back.o);
    assert.equal(back.o.list[1].up, back.o);
    assert.equal(back.o.a, 1);
  });

  it('every kind of primitive travels as a key and a value of a Map and as an item of a Set', () => {
    const prims: unknown[] = [true, false, 0, -0, NaN, 1n, 'x'.repeat(70), undefined, null];
    const map = new Map(prims.map((p, i) => [p, prims[prims.length - 1 - i]]));
    const set = new Set(prims);
    const back = decode(encode({ map, set, buf: Buffer.from('marked') })) as { map: Map<unknown, unknown>; set: Set<unknown> };
    assert.deepEqual(back.map, map);
    assert.deepEqual(back.set, set);
  });

  it('a structure without refs may appear both among the arguments and inside a Map', () => {
    const o = { x: 1 };
    const a = [1, 2];
    const r = new ObjectRef('a-1', owner);
    const bytes = encodeArgs(
      [
        r,
        o,
        a,
        new Map<string, unknown>([
          ['o', o],
          ['a', a],
        ]),
      ],
      () => undefined,
    );
    const [, , , map] = decode(bytes, () => 'ONE') as [unknown, unknown, unknown, Map<string, unknown>];
    assert.deepEqual(map.get('o'), { x: 1 });
    assert.throws(() => encodeArgs([[r], new Set([a, [r]])], () => undefined), SerializationError, 'an array holding a ref, found again in a Set');
    const holder = [r];
    assert.throws(
      () => encodeArgs([holder, new Set([holder])], () => undefined),
      (e: unknown) => e instanceof SerializationError && e.path === 'args[1].<item 0>',
    );
  });

  it('an actor handle travels as a handle, alone or inside a value', () => {
    const HANDLE = Symbol.for('volley.actorHandle');
    const wire = { name: 'ps', mode: 'memory' };
    // A handle as sdk/actor.ts makes one (null prototype, its wire form under the handle key).
    const h = Object.assign(Object.create(null) as object, { [HANDLE]: wire });
    for (const back of [decode(encode(h)), (decode(encode([h, 1])) as unknown[])[0], (decode(encode({ h })) as { h: unknown }).h]) {
      assert.equal(typeof back, 'object');
      assert.deepEqual((back as Record<symbol, unknown>)[HANDLE], wire);
    }
    // A decoded handle can be passed on again.
    const again = decode(encode([decode(encode(h))])) as unknown[];
    assert.deepEqual((again[0] as Record<symbol, unknown>)[HANDLE], wire);
  });
});
