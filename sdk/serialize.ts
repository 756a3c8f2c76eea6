/**
 * Binary, type-preserving encoding of values that travel between driver, workers and the store.
 *
 * V8's structured serializer (`node:v8`) does the byte work: typed arrays, Buffers and
 * ArrayBuffers go as raw bytes; Map, Set, Date, RegExp, BigInt, cycles and nested structures
 * round-trip. It silently turns class instances into plain objects and drops symbol keys, so a
 * walk before it rejects what would not survive, and swaps the two library types that must
 * survive (ObjectRef, Matrix) and Buffers for tagged markers that `decode` turns back.
 *
 * Layout: V8's serialization of the value itself when it holds no markers; otherwise of a
 * root marker wrapping it, so `decode` knows whether to look for markers at all.
 */
import { deserialize, serialize } from 'node:v8';
import { SerializationError } from './errors.js';
import { Matrix } from './matrix.js';
import { ObjectRef } from './ref.js';

const MARK = '\u0000volley';

type Marker =
  | { [MARK]: 'ref'; id: string }
  | { [MARK]: 'matrix'; rows: number; cols: number; data: Float64Array }
  | { [MARK]: 'buffer'; bytes: Uint8Array }
  | { [MARK]: 'bare'; props: Record<string, unknown> }
  | { [MARK]: 'root'; value: unknown };

const TYPED_ARRAY_PROTOS = new Set<object>(
  [
    Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView,
  ].map((c) => c.prototype),
);

/** Where refs found in a value go; absent where refs may not appear. */
export type RefSink = (ref: ObjectRef<unknown>, path: string) => void;

interface WalkState {
  seen: Map<object, unknown>;
  marked: boolean;
  onRef?: RefSink;
  refsNotAllowed: string;
}

function fail(path: string, what: string, fix: string): never {
  throw new SerializationError(`${path} is ${what}, which cannot be sent to a task or stored: ${fix}`, path);
}

function describe(v: object): string {
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return ctor ? `an instance of class ${ctor}` : 'an object with a custom prototype';
}

/** Returns `v` itself when nothing under it needs a marker, otherwise a copy with markers. */
function walk(v: unknown, path: string, st: WalkState): unknown {
  switch (typeof v) {
    case 'number': case 'string': case 'boolean': case 'undefined': case 'bigint':
      return v;
    case 'symbol':
      return fail(path, 'a symbol', 'use a string instead');
    case 'function':
      return fail(path, 'a function', 'pass data; to run code remotely, make it a task with remote() and call it');
  }
  if (v === null) return v;
  const obj = v as object;
  if (st.seen.has(obj)) return st.seen.get(obj);
  if (obj instanceof ObjectRef) {
    if (!st.onRef) return fail(path, 'an ObjectRef', st.refsNotAllowed);
    st.onRef(obj, path);
    st.marked = true;
    const m: Marker = { [MARK]: 'ref', id: obj.id };
    st.seen.set(obj, m);
    return m;
  }
  if (obj instanceof Matrix) {
    const m = obj as Matrix;
    if (!(m.data instanceof Float64Array)) fail(`${path}.data`, 'not a Float64Array', 'build matrices with new Matrix(rows, cols, data)');
    st.marked = true;
    const mk: Marker = { [MARK]: 'matrix', rows: m.rows, cols: m.cols, data: m.data };
    st.seen.set(obj, mk);
    return mk;
  }
  const proto = Object.getPrototypeOf(obj) as object | null;
  if (proto === Array.prototype) {
    const arr = obj as unknown[];
    let out: unknown[] | undefined;
    st.seen.set(obj, obj);
    for (let i = 0; i < arr.length; i++) {
      const x = arr[i];
      if (typeof x !== 'object' && typeof x !== 'function' && typeof x !== 'symbol') continue;
      const y = walk(x, `${path}[${i}]`, st);
      if (y !== x) {
        if (!out) {
          out = arr.slice();
          st.seen.set(obj, out);
        }
        out[i] = y;
      }
    }
    return out ?? obj;
  }
  if (proto === Object.prototype || proto === null) {
    if (Object.getOwnPropertySymbols(obj).length > 0) {
      fail(path, 'an object with symbol keys', 'symbol-keyed properties would be dropped; use string keys');
    }
    if (MARK in obj) fail(path, `an object with the reserved key ${JSON.stringify(MARK)}`, 'rename that key');
    const rec = obj as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    st.seen.set(obj, obj);
    for (const k of Object.keys(rec)) {
      const x = rec[k];
      if (typeof x !== 'object' && typeof x !== 'function' && typeof x !== 'symbol') continue;
      const y = walk(x, `${path}.${k}`, st);
      if (y !== x) {
        if (!out) {
          out = proto === null ? Object.assign(Object.create(null), rec) : { ...rec };
          st.seen.set(obj, out);
        }
        out![k] = y;
      }
    }
    if (proto === null) {
      // V8 would give it Object.prototype; a marker keeps the null prototype.
      st.marked = true;
      const mk: Marker = { [MARK]: 'bare', props: { ...(out ?? rec) } };
      st.seen.set(obj, mk);
      return mk;
    }
    return out ?? obj;
  }
  if (Buffer.isBuffer(obj)) {
    st.marked = true;
    const mk: Marker = { [MARK]: 'buffer', bytes: new Uint8Array(obj.buffer, obj.byteOffset, obj.byteLength) };
    st.seen.set(obj, mk);
    return mk;
  }
  if (TYPED_ARRAY_PROTOS.has(proto!) || proto === ArrayBuffer.prototype || proto === Date.prototype || proto === RegExp.prototype) {
    return obj;
  }
  if (proto === Map.prototype) {
    const map = obj as Map<unknown, unknown>;
    let out: Map<unknown, unknown> | undefined;
    st.seen.set(obj, obj);
    let i = 0;
    for (const [k, x] of map) {
      const k2 = walk(k, `${path}.<key ${i}>`, st);
      const y = walk(x, `${path}.get(${typeof k === 'string' ? JSON.stringify(k) : `<key ${i}>`})`, st);
      if (k2 !== k || y !== x) {
        if (!out) {
          out = new Map();
          st.seen.set(obj, out);
          for (const [kk, xx] of map) {
            if (kk === k) break;
            out.set(kk, xx);
          }
        }
      }
      out?.set(k2, y);
      i++;
    }
    return out ?? obj;
  }
  if (proto === Set.prototype) {
    const set = obj as Set<unknown>;
    const items = [...set];
    const mapped = items.map((x, i) => walk(x, `${path}.<item ${i}>`, st));
    if (mapped.every((y, i) => y === items[i])) return obj;
    const out = new Set(mapped);
    st.seen.set(obj, out);
    return out;
  }
  if (obj instanceof Error) {
    return fail(path, `an Error (${(obj as Error).name})`, 'send its message and name as strings instead');
  }
  if (typeof SharedArrayBuffer !== 'undefined' && obj instanceof SharedArrayBuffer) {
    return fail(path, 'a SharedArrayBuffer', 'copy it into an ArrayBuffer or typed array');
  }
  return fail(path, describe(obj), 'class instances would lose their prototype; send a plain object, an array, a typed array or a Matrix');
}

function finish(value: unknown, marked: boolean, path: string): Uint8Array {
  try {
    // V8 returns a buffer of its own (not a slice of Node's pool, which postMessage would
    // copy whole), so it is used as it is.
    return serialize(marked ? { [MARK]: 'root', value } : value);
  } catch (err) {
    throw new SerializationError(`${path} cannot be serialized: ${(err as Error).message}`, path, { cause: err });
  }
}

/** Encodes a task result or a `put` value (no refs allowed inside). */
export function encode(value: unknown, path = 'value'): Uint8Array {
  const st: WalkState = {
    seen: new Map(),
    marked: false,
    refsNotAllowed: 'refs can be passed as task arguments, not stored inside results or put() values; return the value instead',
  };
  const v = walk(value, path, st);
  return finish(v, st.marked, path);
}

/** Encodes a task's argument list; refs anywhere in arrays and plain objects are collected in order. */
export function encodeArgs(args: readonly unknown[], onRef: RefSink): Uint8Array {
  const st: WalkState = { seen: new Map(), marked: false, onRef, refsNotAllowed: '' };
  const v = args.map((a, i) => walk(a, `args[${i}]`, st));
  return finish(v, st.marked, 'args');
}

/** Resolves a ref id found in encoded arguments to its value. */
export type RefResolver = (id: string) => unknown;

/**
 * Decodes bytes made by `encode`/`encodeArgs`. Bytes in shared memory are copied first, so the
 * value never aliases a store's buffer (tasks may mutate their arguments freely).
 */
export function decode(bytes: Uint8Array, resolveRef?: RefResolver): unknown {
  if (bytes.length === 0) throw new SerializationError('cannot decode an empty payload', 'value');
  const buf = bytes.buffer instanceof SharedArrayBuffer ? Uint8Array.prototype.slice.call(bytes) : bytes;
  const value = deserialize(buf) as unknown;
  if (!isMarker(value) || value[MARK] !== 'root') return value;
  return revive(value.value, resolveRef, new Map());
}

function isMarker(v: unknown): v is Marker {
  return typeof v === 'object' && v !== null && Object.prototype.hasOwnProperty.call(v, MARK);
}

function reviveMarker(m: Marker, resolveRef: RefResolver | undefined, seen: Map<object, unknown>): unknown {
  if (seen.has(m)) return seen.get(m);
  let out: unknown;
  switch (m[MARK]) {
    case 'bare': {
      const o = Object.create(null) as Record<string, unknown>;
      seen.set(m, o);
      for (const [k, x] of Object.entries(m.props)) o[k] = revive(x, resolveRef, seen);
      return o;
    }
    case 'root':
      throw new SerializationError('malformed payload: a nested root marker', 'value');
    case 'ref':
      if (!resolveRef) throw new SerializationError(`found a ref (${m.id}) where none can be resolved`, 'value');
      out = resolveRef(m.id);
      break;
    case 'matrix':
      out = new Matrix(m.rows, m.cols, m.data);
      break;
    case 'buffer':
      out = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
      break;
  }
  seen.set(m, out);
  return out;
}

/** Replaces markers in place; `seen` maps each visited object (or marker) to what replaces it. */
function revive(v: unknown, resolveRef: RefResolver | undefined, seen: Map<object, unknown>): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (isMarker(v)) return reviveMarker(v, resolveRef, seen);
  if (seen.has(v)) return seen.get(v);
  seen.set(v, v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === 'object' && x !== null) v[i] = revive(x, resolveRef, seen);
    }
  } else if (v instanceof Map) {
    const entries = [...v.entries()];
    v.clear();
    for (const [k, x] of entries) v.set(revive(k, resolveRef, seen), revive(x, resolveRef, seen));
  } else if (v instanceof Set) {
    const items = [...v];
    v.clear();
    for (const x of items) v.add(revive(x, resolveRef, seen));
  } else if (!ArrayBuffer.isView(v) && !(v instanceof Date) && !(v instanceof RegExp) && !(v instanceof ArrayBuffer)) {
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      const x = rec[k];
      if (typeof x === 'object' && x !== null) rec[k] = revive(x, resolveRef, seen);
    }
  }
  return v;
}
