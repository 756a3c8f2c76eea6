/**
 * Argument lists of a few JSON-exact primitives and refs (the inner tasks of a DAG, such as
 * `add(x, y)` over two results) are encoded without V8's serializer: 'R' and JSON. They must
 * mean exactly what the walk's encoding means: the same refs reported in the same order, the
 * same values and identities after decoding, the same errors; and malformed ones are refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObjectRef, ProtocolError, SerializationError } from 'volley';
import { decode, encodeArgs } from '../../sdk/serialize.js';

const owner = { jobId: 'j' };
const R = 0x52;

function collect(args: unknown[]): { bytes: Uint8Array; found: string[] } {
  const found: string[] = [];
  const bytes = encodeArgs(args, (ref, path) => found.push(`${ref.id}@${path}`));
  return { bytes, found };
}

describe('serialization: compact argument lists with refs', () => {
  it('encodes primitives and refs as JSON, reports the refs in order, and resolves them on decode', () => {
    const r1 = new ObjectRef('add-1', owner);
    const r2 = new ObjectRef('leaf-2', owner);
    const { bytes, found } = collect([1, r1, 'x', r2, true, null]);
    assert.equal(bytes[0], R, 'not through V8');
    assert.ok(bytes.length < 80);
    assert.deepEqual(found, ['add-1@args[1]', 'leaf-2@args[3]']);
    const values: Record<string, unknown> = { 'add-1': { n: 1 }, 'leaf-2': [2] };
    assert.deepEqual(
      decode(bytes, (id) => values[id]),
      [1, { n: 1 }, 'x', [2], true, null],
    );
    // A list of refs only, as a two-input task gets.
    const two = collect([r1, r2]);
    assert.equal(two.bytes[0], R);
    assert.deepEqual(
      decode(two.bytes, (id) => values[id]),
      [{ n: 1 }, [2]],
    );
  });

  it('one ref passed twice is reported once and decodes to one value (a task sees one object)', () => {
    const r = new ObjectRef('a-1', owner);
    const { bytes, found } = collect([r, 2, r]);
    assert.equal(bytes[0], R);
    assert.deepEqual(found, ['a-1@args[0]']);
    let resolved = 0;
    const [a, , b] = decode(bytes, () => ({ resolved: ++resolved })) as [object, number, object];
    assert.equal(resolved, 1);
    assert.equal(a, b, 'the same object in both places, as the walk gives');
  });

  it('two ref objects with one id take the walk, which reports each', () => {
    const { bytes, found } = collect([new ObjectRef('a-1', owner), new ObjectRef('a-1', owner)]);
    assert.notEqual(bytes[0], R);
    assert.deepEqual(found, ['a-1@args[0]', 'a-1@args[1]']);
    assert.deepEqual(
      decode(bytes, () => 'ONE'),
      ['ONE', 'ONE'],
    );
  });

  it('other lists with refs take the walk and keep their meaning', () => {
    const r = new ObjectRef('a-1', owner);
    // biome-ignore lint/suspicious/noSparseArray: a hole is what this test sends
    const holey = [r, , 3];
    const extra = Object.assign([r, 1], { note: 'x' });
    const cases: unknown[][] = [[r, -0], [r, Number.NaN], [r, undefined], [r, 'x'.repeat(65)], [r, [1]], [r, { k: 1 }], [r, ...Array(16).fill(1)], holey, extra];
    for (const args of cases) {
      const { bytes, found } = collect(args);
      assert.notEqual(bytes[0], R, `walk for ${String(args)}`);
      assert.deepEqual(found, ['a-1@args[0]']);
      const back = decode(bytes, () => 'ONE') as unknown[];
      assert.deepEqual(
        back,
        args.map((x) => (x === r ? 'ONE' : x)),
      );
    }
    assert.ok(Object.is((decode(collect([r, -0]).bytes, () => 'ONE') as unknown[])[1], -0));
  });

  it('a ref the sink refuses fails the call as in the walk', () => {
    const foreign = new ObjectRef('other-1', owner);
    const refuse = () => {
      throw new SerializationError('args[1] is a ref from another runtime', 'args[1]');
    };
    assert.throws(() => encodeArgs([1, foreign], refuse), /args\[1\] is a ref from another runtime/);
  });

  it('a ref where none can be resolved is a SerializationError naming it', () => {
    const { bytes } = collect([new ObjectRef('a-1', owner), 1]);
    assert.throws(
      () => decode(bytes),
      (e: unknown) => e instanceof SerializationError && /found a ref \(a-1\) where none can be resolved/.test(e.message),
    );
  });

  it('refuses malformed compact lists with a ProtocolError', () => {
    const payload = (json: string) => new Uint8Array([R, ...Buffer.from(json)]);
    const malformed = [
      '{',
      '[1,2]',
      'null',
      '{"a":[1]}',
      '{"a":["x"],"r":[]}',
      '{"a":["x"],"r":[1]}',
      '{"a":["x",1],"r":[1]}',
      '{"a":["x","y"],"r":[1,0]}',
      '{"a":["x","y"],"r":[0,0]}',
      '{"a":["x"],"r":[0.5]}',
      '{"a":["x"],"r":["0"]}',
    ];
    for (const json of malformed) {
      assert.throws(
        () => decode(payload(json), (id) => id),
        (e: unknown) => e instanceof ProtocolError && /^malformed payload: /.test(e.message),
        json,
      );
    }
    assert.deepEqual(
      decode(payload('{"a":["x",2,"y"],"r":[0,2]}'), (id) => `<${id}>`),
      ['<x>', 2, '<y>'],
    );
  });
});
