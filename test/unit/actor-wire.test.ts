/**
 * The wire form of actor handles and of the actor operations a task sends to the driver: what
 * arrives from outside (a payload, a worker thread's message) is validated strictly, as the
 * rest of the protocol is.
 */
import assert from 'node:assert/strict';
import { serialize } from 'node:v8';
import { describe, it } from 'node:test';
import { ProtocolError } from 'volley';
import { validateActorHandleWire, validateActorOp } from '../../sdk/protocol.js';
import { decode } from '../../sdk/serialize.js';
import '../../sdk/actor.js';

const good = { id: 'Counter-a1-xyz', cls: 'Counter', methods: ['add', 'read'], mode: 'store', g: 'g1', after: ['actor:Counter-3'] };

/** A payload holding a handle marker with this wire form, as an encoder would lay it out. */
function payloadWith(wire: unknown): Uint8Array {
  const MARK = '\u0000volley';
  return serialize({ [MARK]: 'root', value: { h: { [MARK]: 'actor', handle: wire } } });
}

describe('actor handle wire form', () => {
  it('accepts a handle as the encoder makes it', () => {
    assert.deepEqual(validateActorHandleWire({ ...good }), good);
    assert.deepEqual(validateActorHandleWire({ name: 'ps', mode: 'memory' }), { name: 'ps', mode: 'memory' });
  });

  for (const [what, wire] of [
    ['a field outside the protocol', { ...good, extra: 1 }],
    ['an unknown mode', { ...good, mode: 'disk' }],
    ['neither id nor name', { mode: 'store' }],
    ['an id that leaves the actor prefix', { ...good, id: '../other' }],
    ['an id with a slash', { ...good, id: 'a/b' }],
    ['methods that are not names', { ...good, methods: [1] }],
    ['too many earlier calls', { ...good, after: Array.from({ length: 9 }, (_, i) => `c${i}`) }],
    ['an id with control characters', { ...good, id: 'a\u0001b' }],
  ] as const) {
    it(`refuses ${what} with a ProtocolError, also inside a decoded value`, () => {
      assert.throws(() => validateActorHandleWire(wire), ProtocolError);
      assert.throws(() => decode(payloadWith(wire)), ProtocolError);
    });
  }

  it('a decoded handle (no runtime to bind to) has the methods it names', () => {
    const h = (decode(payloadWith(good)) as { h: Record<string, unknown> }).h;
    assert.deepEqual(Object.keys(h).sort(), ['add', 'read']);
  });
});

describe('actor operations from a worker thread', () => {
  it('accepts start, call and kill as the thread session makes them', () => {
    validateActorOp({ op: 'start', id: 'Counter-a1', cls: 'Counter', methods: ['add'], module: 'file:///x.js', options: { name: 'n' } });
    validateActorOp({ op: 'call', id: 'Counter-a1', method: 'add' });
    validateActorOp({ op: 'call', name: 'ps', method: 'add' });
    validateActorOp({ op: 'kill', name: 'ps' });
  });

  for (const [what, op] of [
    ['an unknown operation', { op: 'restart', id: 'x' }],
    ['a call without id or name', { op: 'call', method: 'add' }],
    ['a call with both id and name', { op: 'call', id: 'x', name: 'y', method: 'add' }],
    ['a call without a method', { op: 'call', id: 'x' }],
    ['a start with a field outside the protocol', { op: 'start', id: 'x', cls: 'C', methods: [], extra: true }],
    ['a start whose options are not an object', { op: 'start', id: 'x', cls: 'C', methods: [], options: 5 }],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(() => validateActorOp(op), ProtocolError);
    });
  }
});
