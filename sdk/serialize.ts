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
 * root marker wrapping it, so `decode` knows whether to look for markers at all. Binary data of
 * 64 KiB or more (typed arrays, Buffers, ArrayBuffers, a Matrix's data) is framed instead of
 * going through V8's serializer, which copies it through a growing buffer: the output is
 *   'V' | u32 header length | V8 header | 8-byte-aligned raw segments
 * written with one copy into one buffer, which the caller may allocate in shared memory.
 * Tiny values (a short flat list of JSON-exact primitives, like most argument lists and
 * results of small tasks) skip both: 'J' followed by their JSON, because V8's serializer costs
 * more per call (~15 µs) than everything else a no-op task does in the driver. An argument
 * list of a few such primitives and refs (the inner tasks of a DAG) is 'R' followed by the JSON
 * of the list with the refs' ids in their places and the refs' positions.
 */
import { deserialize, serialize } from 'node:v8';
import { ProtocolError, SerializationError, VolleyError } from './errors.js';
import { Matrix } from './matrix.js';
import { ObjectRef } from './ref.js';
import { describeExcess, excessFix, findExcess, scannedArraysNeedKeys, scanV8, type V8Excess } from './v8-scan.js';

const MARK = '\u0000volley';

type Marker =
  | { [MARK]: 'ref'; id: string }
  | { [MARK]: 'matrix'; rows: number; cols: number; data: unknown }
  | { [MARK]: 'buffer'; bytes: unknown }
  | { [MARK]: 'bare'; props: Record<string, unknown> }
  | { [MARK]: 'bin'; type: string; seg: number }
  | { [MARK]: 'actor'; handle: unknown }
  | { [MARK]: 'root'; value: unknown; segs?: number[] };

/** First byte of a compact payload (JSON text follows). */
const COMPACT = 0x4a;
const COMPACT_MAX_ITEMS = 16;
const COMPACT_MAX_STRING = 64;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A primitive that JSON carries exactly (no -0, NaN, Infinity, undefined or BigInt). */
function jsonExact(v: unknown): boolean {
  switch (typeof v) {
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0);
    case 'string':
      return v.length <= COMPACT_MAX_STRING;
    default:
      return v === null;
  }
}

/** Tiny values: a JSON-exact primitive, or a plain array of a few (no holes, no extra keys). */
function compactable(v: unknown): boolean {
  if (jsonExact(v)) return true;
  if (!Array.isArray(v) || Object.getPrototypeOf(v) !== Array.prototype || v.length > COMPACT_MAX_ITEMS) return false;
  for (let i = 0; i < v.length; i++) if (!(i in v) || !jsonExact(v[i])) return false;
  return Object.keys(v).length === v.length;
}

function compact(v: unknown, tag = COMPACT): Uint8Array {
  const json = JSON.stringify(v);
  const n = json.length;
  // ASCII (numbers, ids, most short strings) byte by byte: cheaper for a few dozen characters
  // than measuring and encoding UTF-8 through a view; anything else as UTF-8.
  const out = new Uint8Array(n + 1);
  out[0] = tag;
  for (let i = 0; i < n; i++) {
    const c = json.charCodeAt(i);
    if (c > 0x7f) {
      const utf = new Uint8Array(Buffer.byteLength(json) + 1);
      utf[0] = tag;
      utf8.encodeInto(json, utf.subarray(1));
      return utf;
    }
    out[i + 1] = c;
  }
  return out;
}

/**
 * First byte of a compact argument list holding refs: JSON text of `{ a, r }` follows, `a` the
 * list with each ref's id in its place, `r` the positions of the refs, ascending.
 */
const COMPACT_REFS = 0x52;

/**
 * A short argument list of JSON-exact primitives and refs, at least one ref (the arguments of
 * most inner tasks of a DAG: `add(x, y)` over two results), encoded without V8's serializer;
 * undefined for any other list. The refs go to `onRef` as the walk would give them: in order,
 * each ref object once. Two distinct ref objects with one id take the walk instead, so that
 * decoding (one value per id) keeps the identities the walk keeps (one value per ref object).
 */
function compactRefs(args: readonly unknown[], onRef: RefSink): Uint8Array | undefined {
  const n = args.length;
  if (n === 0 || n > COMPACT_MAX_ITEMS || Object.getPrototypeOf(args) !== Array.prototype) return undefined;
  let refs = 0;
  for (let i = 0; i < n; i++) {
    const x = args[i];
    if (x instanceof ObjectRef) refs++;
    // A hole reads as undefined, which is not JSON-exact.
    else if (!jsonExact(x)) return undefined;
  }
  if (refs === 0 || Object.keys(args).length !== n) return undefined;
  // Indexed loops: this runs once per task.
  const a = new Array<unknown>(n);
  const r = new Array<number>(refs);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const x = args[i];
    if (!(x instanceof ObjectRef)) {
      a[i] = x;
      continue;
    }
    const id = x.id;
    for (let j = 0; j < k; j++) if (a[r[j]!] === id && args[r[j]!] !== x) return undefined;
    a[i] = id;
    r[k++] = i;
  }
  for (let j = 0; j < k; j++) {
    const i = r[j]!;
    const x = args[i] as ObjectRef<unknown>;
    if (args.indexOf(x) === i) onRef(x, ARG_PATHS[i]!);
  }
  return compact({ a, r }, COMPACT_REFS);
}

/** Error paths of the arguments a compact list can hold, made once (a ref's path is named only if it is refused). */
const ARG_PATHS: readonly string[] = Array.from({ length: COMPACT_MAX_ITEMS }, (_, i) => `args[${i}]`);

/** The JSON text after a compact payload's first byte (either compact form), parsed. */
function parseCompact(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(utf8Decoder.decode(bytes.subarray(1))) as unknown;
  } catch (err) {
    return malformed(`compact JSON that does not parse (${(err as Error).message})`);
  }
}

/** Decodes a compact argument list holding refs (see `compactRefs`), its refs resolved. */
function decodeCompactRefs(bytes: Uint8Array, resolveRef: RefResolver | undefined): unknown[] {
  const v = parseCompact(bytes) as { a?: unknown; r?: unknown } | null;
  const a = v?.a;
  const r = v?.r;
  if (!Array.isArray(a) || !Array.isArray(r) || r.length === 0) return malformed('a compact argument list without its list of refs');
  let prev = -1;
  for (const i of r as unknown[]) {
    if (typeof i !== 'number' || !Number.isInteger(i) || i <= prev || i >= a.length || typeof a[i] !== 'string') {
      return malformed('a compact argument list whose ref positions are not ascending positions of ids');
    }
    prev = i;
  }
  if (!resolveRef) throw new SerializationError(`found a ref (${a[r[0] as number] as string}) where none can be resolved`, 'value');
  const ids = r.map((i: number) => a[i] as string);
  for (let k = 0; k < r.length; k++) {
    // One value per id, as one marker per ref object decodes to one value.
    const first = ids.indexOf(ids[k]!);
    a[r[k] as number] = first < k ? a[r[first] as number] : resolveRef(ids[k]!);
  }
  return a;
}

/** Binary data at least this large is framed as a raw segment. */
const SEGMENT_MIN = 64 * 1024;
/** First byte of a framed payload; V8's own payloads start with 0xFF. */
const FRAMED = 0x56;

/** The binary view types, by constructor name (how a framed segment records its type). */
const BINARY_TYPES: Record<string, new (b: ArrayBuffer, off: number, len: number) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
} as never;

const TYPED_ARRAY_PROTOS = new Set<object>(Object.values(BINARY_TYPES).map((c) => c.prototype as object));

/** Where refs found in a value go; absent where refs may not appear. */
export type RefSink = (ref: ObjectRef<unknown>, path: string) => void;

interface WalkState {
  /** What each object met so far becomes: itself, its copy or its marker; ACTIVE while its own walk runs and it is not copied yet. */
  seen: Map<object, unknown>;
  marked: boolean;
  segments: Uint8Array[];
  onRef?: RefSink;
  refsNotAllowed: string;
  /** Set while walking the entries of a Map or Set ('a Map', 'a Set'), where refs are not resolved. */
  inCollection?: string;
  /** Refs found so far, and the arrays and plain objects that hold one (to refuse them inside a Map or Set too). */
  refs: number;
  refHolders: Set<object>;
  /**
   * Arrays are walked by their own keys (present elements, then named properties), not by
   * index: set for a second walk once the first met a hole, copied an array with named
   * properties, or V8 wrote an array with named properties or holes (see `encodeWith`).
   */
  keys: boolean;
}

/**
 * Thrown by a walk by index at an array's first hole, or once it copied an array with named
 * properties: the value is walked again by keys, so that a sparse array costs its elements, not
 * its length, and a copy keeps its holes and named properties.
 */
const REWALK: unique symbol = Symbol('rewalk');

const REFS_IN_COLLECTIONS = 'refs are resolved only among the arguments and inside their arrays and plain objects; pass the ref as an argument (or in an array) and build the Map or Set in the task';

function fail(path: string, what: string, fix: string): never {
  throw new SerializationError(`${path} is ${what}, which cannot be sent to a task or stored: ${fix}`, path);
}

/**
 * The `seen` entry of an array, plain object, Map or Set whose walk is under way and which is
 * not copied yet. A reference back to it from inside (a cycle) copies it at once and points at
 * the copy: had it pointed at the original, a copy made later (for a marker after the cycle)
 * would leave that reference on the original. So everything on a cycle is copied, once each;
 * a value with no marker at all is sent as it is (see `finish`).
 */
const ACTIVE: unique symbol = Symbol('active');

/** The copy of `obj` (under way, not copied yet) that a reference back to it gets; its own walk fills it in. */
function copyOnCycle(obj: object, st: WalkState): unknown {
  const proto = Object.getPrototypeOf(obj) as object | null;
  // The elements and properties walked so far are unchanged (else it would be copied already).
  const out = proto === Array.prototype ? copyArray(obj as unknown[], st.keys) : proto === Map.prototype ? new Map() : proto === Set.prototype ? new Set() : { ...obj };
  st.seen.set(obj, out);
  return out;
}

/**
 * A copy of an array as V8's serializer would send it: its elements (holes kept) and, walked by
 * keys, its named properties too (by index, an array has none: see `WalkState.keys`).
 */
function copyArray(arr: unknown[], keys: boolean): unknown[] {
  if (!keys) return arr.slice();
  const out = new Array<unknown>(arr.length);
  for (const k of Object.keys(arr)) setOwn(out, k, (arr as unknown as Record<string, unknown>)[k]);
  return out;
}

/** Sets an own data property (`o[k] = x` would set the prototype for the key "__proto__"). */
function setOwn(o: object, k: string, x: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: x, writable: true, enumerable: true, configurable: true });
  else (o as Record<string, unknown>)[k] = x;
}

/** Whether an own key of an array is an index (Object.keys lists them first, ascending). */
function isIndex(k: string): boolean {
  const n = Number(k);
  return n >>> 0 === n && n !== 4294967295 && String(n) === k;
}

/** Walks an array by its own keys: present elements, then named properties. Returns its copy if one was needed. */
function walkArrayKeys(arr: unknown[], path: string, st: WalkState): unknown[] | undefined {
  let out: unknown[] | undefined;
  let index = true;
  for (const k of Object.keys(arr)) {
    if (index && !isIndex(k)) index = false;
    const x = (arr as unknown as Record<string, unknown>)[k];
    if (typeof x !== 'object' && typeof x !== 'function' && typeof x !== 'symbol') continue;
    const y = walk(x, index ? `${path}[${k}]` : `${path}.${k}`, st);
    if (y !== x) {
      if (!out) {
        const c = st.seen.get(arr);
        out = c === ACTIVE ? copyArray(arr, true) : (c as unknown[]);
        st.seen.set(arr, out);
      }
      setOwn(out, k, y);
    }
  }
  return out;
}

/** Refuses an ArrayBuffer, or a view of one, whose contents were transferred (V8 would throw a TypeError). */
function refuseDetached(obj: object, path: string): void {
  const view = ArrayBuffer.isView(obj);
  const b = view ? obj.buffer : (obj as ArrayBuffer);
  if (b.byteLength !== 0) return;
  // `ArrayBuffer.prototype.detached` is not in Node 20: a detached buffer cannot be viewed.
  let detached = (b as { detached?: boolean }).detached;
  if (detached === undefined) {
    try {
      new Uint8Array(b);
      detached = false;
    } catch {
      detached = true;
    }
  }
  if (detached) {
    fail(path, view ? 'a view of a detached ArrayBuffer' : 'a detached ArrayBuffer', 'its contents were transferred (postMessage, structuredClone or transfer()); send the buffer that received them');
  }
}

function describe(v: object): string {
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return ctor ? `an instance of class ${ctor}` : 'an object with a custom prototype';
}

/** Returns `v` itself when nothing under it needs a marker, otherwise a copy with markers. */
function walk(v: unknown, path: string, st: WalkState): unknown {
  switch (typeof v) {
    case 'number':
    case 'string':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return v;
    case 'symbol':
      return fail(path, 'a symbol', 'use a string instead');
    case 'function':
      return fail(path, 'a function', 'pass data; to run code remotely, make it a task with remote() and call it');
  }
  if (v === null) return v;
  const obj = v as object;
  if (obj instanceof ObjectRef) {
    if (!st.onRef) return fail(path, 'an ObjectRef', st.refsNotAllowed);
    if (st.inCollection) return fail(path, `an ObjectRef inside ${st.inCollection}`, REFS_IN_COLLECTIONS);
    st.refs++;
    if (st.seen.has(obj)) return st.seen.get(obj);
    st.onRef(obj, path);
    st.marked = true;
    const m: Marker = { [MARK]: 'ref', id: obj.id };
    st.seen.set(obj, m);
    return m;
  }
  if (st.seen.has(obj)) {
    if (st.inCollection && st.refHolders.has(obj)) return fail(path, `an ObjectRef inside ${st.inCollection}`, REFS_IN_COLLECTIONS);
    const s = st.seen.get(obj);
    return s === ACTIVE ? copyOnCycle(obj, st) : s;
  }
  if (obj instanceof Matrix) {
    const m = obj as Matrix;
    if (!(m.data instanceof Float64Array)) fail(`${path}.data`, 'not a Float64Array', 'build matrices with new Matrix(rows, cols, data)');
    st.marked = true;
    const mk: Marker = { [MARK]: 'matrix', rows: m.rows, cols: m.cols, data: walk(m.data, `${path}.data`, st) };
    st.seen.set(obj, mk);
    return mk;
  }
  const proto = Object.getPrototypeOf(obj) as object | null;
  if (proto === Array.prototype) {
    const arr = obj as unknown[];
    let out: unknown[] | undefined;
    const refsBefore = st.refs;
    st.seen.set(obj, ACTIVE);
    if (st.keys) out = walkArrayKeys(arr, path, st);
    else {
      for (let i = 0; i < arr.length; i++) {
        const x = arr[i];
        if (typeof x !== 'object' && typeof x !== 'function' && typeof x !== 'symbol') {
          if (x === undefined && !(i in arr)) throw REWALK;
          continue;
        }
        const y = walk(x, `${path}[${i}]`, st);
        if (y !== x) {
          if (!out) {
            const c = st.seen.get(obj);
            out = c === ACTIVE ? arr.slice() : (c as unknown[]);
            st.seen.set(obj, out);
          }
          out[i] = y;
        }
      }
      // A copy by index has the elements only: named properties (none without holes, unless
      // Object.keys lists more than the length) need the walk by keys. V8 cannot say it here:
      // it sees the copy. Object.keys costs about 1% of the walk of an array of refs.
      if (out && Object.keys(arr).length !== arr.length) throw REWALK;
    }
    if (!out) st.seen.set(obj, obj);
    if (st.refs > refsBefore) st.refHolders.add(obj);
    return out ?? obj;
  }
  if (proto === null && Object.hasOwn(obj, ACTOR_HANDLE)) {
    // An actor handle travels as its wire form (sdk/actor.ts makes it, protocol.ts validates it).
    if (!handleCodec) return fail(path, 'an actor handle', 'the actor module is not loaded');
    st.marked = true;
    const mk: Marker = { [MARK]: 'actor', handle: handleCodec.wire(obj) };
    st.seen.set(obj, mk);
    return mk;
  }
  if (proto === Object.prototype || proto === null) {
    if (Object.getOwnPropertySymbols(obj).length > 0) {
      fail(path, 'an object with symbol keys', 'symbol-keyed properties would be dropped; use string keys');
    }
    if (MARK in obj) fail(path, `an object with the reserved key ${JSON.stringify(MARK)}`, 'rename that key');
    const rec = obj as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    const refsBefore = st.refs;
    // V8 would give a null-prototype object Object.prototype; a marker keeps the null prototype.
    // It is made before the walk, so that a cycle back to the object points at the marker.
    const mk: Extract<Marker, { [MARK]: 'bare' }> | undefined = proto === null ? { [MARK]: 'bare', props: rec } : undefined;
    st.seen.set(obj, mk ?? ACTIVE);
    for (const k of Object.keys(rec)) {
      const x = rec[k];
      if (typeof x !== 'object' && typeof x !== 'function' && typeof x !== 'symbol') continue;
      const y = walk(x, `${path}.${k}`, st);
      if (y !== x) {
        if (!out) {
          const c = st.seen.get(obj);
          out = mk || c === ACTIVE ? (proto === null ? Object.assign(Object.create(null), rec) : { ...rec }) : (c as Record<string, unknown>);
          if (!mk) st.seen.set(obj, out);
        }
        out![k] = y;
      }
    }
    if (!mk && !out) st.seen.set(obj, obj);
    if (st.refs > refsBefore) st.refHolders.add(obj);
    if (mk) {
      st.marked = true;
      mk.props = { ...(out ?? rec) };
      return mk;
    }
    return out ?? obj;
  }
  if (Buffer.isBuffer(obj)) {
    refuseDetached(obj, path);
    st.marked = true;
    const bytes = new Uint8Array(obj.buffer, obj.byteOffset, obj.byteLength);
    const mk: Marker = { [MARK]: 'buffer', bytes: walk(bytes, path, st) };
    st.seen.set(obj, mk);
    return mk;
  }
  if (TYPED_ARRAY_PROTOS.has(proto!) || proto === ArrayBuffer.prototype) {
    refuseDetached(obj, path);
    // One rule at every size, V8's: a resizable ArrayBuffer travels resizable, with its maximum
    // length (V8's own format, bounded by the decoder's reservation limit, sdk/v8-scan.ts), so
    // it is not framed; a typed array, DataView or Buffer viewing one travels as Node's
    // serializer sends every view, a fixed-length view of a copy of the bytes it views now
    // (a length-tracking view its current length), which is what a framed segment gives too.
    if ((obj as { resizable?: boolean }).resizable === true) return obj;
    const view = ArrayBuffer.isView(obj) ? obj : new Uint8Array(obj as ArrayBuffer);
    if (view.byteLength < SEGMENT_MIN) return obj;
    st.marked = true;
    st.segments.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    const type = ArrayBuffer.isView(obj) ? (proto as { constructor: { name: string } }).constructor.name : 'ArrayBuffer';
    const mk: Marker = { [MARK]: 'bin', type, seg: st.segments.length - 1 };
    st.seen.set(obj, mk);
    return mk;
  }
  if (proto === Date.prototype || proto === RegExp.prototype) return obj;
  if (proto === Map.prototype) {
    const map = obj as Map<unknown, unknown>;
    let out: Map<unknown, unknown> | undefined;
    st.seen.set(obj, ACTIVE);
    const outer = st.inCollection;
    st.inCollection = 'a Map';
    let i = 0;
    for (const [k, x] of map) {
      const k2 = walk(k, `${path}.<key ${i}>`, st);
      const y = walk(x, `${path}.get(${typeof k === 'string' ? JSON.stringify(k) : `<key ${i}>`})`, st);
      if (!out && (k2 !== k || y !== x)) {
        const c = st.seen.get(obj);
        out = c === ACTIVE ? new Map() : (c as Map<unknown, unknown>);
        st.seen.set(obj, out);
        // The entries before this one, unchanged (a copy made on a cycle starts empty).
        let j = 0;
        for (const [kk, xx] of map) {
          if (j++ === i) break;
          out.set(kk, xx);
        }
      }
      out?.set(k2, y);
      i++;
    }
    st.inCollection = outer;
    if (!out) st.seen.set(obj, obj);
    return out ?? obj;
  }
  if (proto === Set.prototype) {
    const set = obj as Set<unknown>;
    const items = [...set];
    st.seen.set(obj, ACTIVE);
    const outer = st.inCollection;
    st.inCollection = 'a Set';
    const mapped = items.map((x, i) => walk(x, `${path}.<item ${i}>`, st));
    st.inCollection = outer;
    const c = st.seen.get(obj);
    if (c === ACTIVE && mapped.every((y, i) => y === items[i])) {
      st.seen.set(obj, obj);
      return obj;
    }
    // A copy made on a cycle (empty so far) is filled here.
    const out = c === ACTIVE ? new Set<unknown>() : (c as Set<unknown>);
    for (const y of mapped) out.add(y);
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
const ACTOR_HANDLE = Symbol.for('volley.actorHandle');

/**
 * How actor handles travel: `wire` gives a handle's wire form, `revive` makes a handle of one
 * (validated) for `owner`, the runtime or task session that decodes the value (undefined: bound
 * to the running task's session when it is called). Set by sdk/actor.ts when it loads.
 */
export interface HandleCodec {
  wire(handle: object): unknown;
  revive(wire: unknown, owner: unknown): object;
}
let handleCodec: HandleCodec | undefined;
/** @internal */
export function setHandleCodec(codec: HandleCodec): void {
  handleCodec = codec;
}

/** Allocates the output of `encode`; a store may allocate it in shared memory. */
export type Allocator = (size: number) => Uint8Array;

const defaultAlloc: Allocator = (n) => new Uint8Array(n);
const align8 = (n: number) => (n + 7) & ~7;

/** V8's serialization of what the walk gave (`value`, wrapped in a root marker if it holds markers). */
function serializeWalked(value: unknown, st: WalkState, path: string): Buffer {
  const segs = st.segments.map((b) => b.byteLength);
  try {
    // V8 returns a buffer of its own (not a slice of Node's pool, which postMessage would
    // copy whole), so a payload without segments is used as it is. `keys` tells `decode` to
    // look for markers among arrays' named properties too.
    return serialize(st.marked ? { [MARK]: 'root', value, ...(segs.length ? { segs } : {}), ...(st.keys ? { keys: true } : {}) } : value);
  } catch (err) {
    throw new SerializationError(
      `${path} cannot be serialized: ${(err as Error).message.replace(/\.$/, '')}; V8's structured clone refused something inside it (a Proxy, or an object of the host such as a stream or socket): pass plain data (see "What can travel" in volley's README)`,
      path,
      { cause: err },
    );
  }
}

/** The decoder's bounds on sparse arrays and resizable ArrayBuffers (sdk/v8-scan.ts), applied here so that the caller sees them. */
function checkHeader(header: Buffer, value: unknown, path: string): void {
  let excess: V8Excess | undefined;
  try {
    excess = scanV8(header);
  } catch (err) {
    throw new SerializationError(
      `${path} cannot be sent: V8 serialized it in a form volley's decoder does not read (${(err as Error).message}); this Node.js version's V8 format is not supported by this version of volley`,
      path,
      { cause: err },
    );
  }
  if (excess) {
    const found = findExcess(excess, value, path, (o) => (!isMarker(o) ? o : o[MARK] === 'root' ? o.value : o[MARK] === 'bare' ? o.props : undefined));
    const whole = excess.kind === 'sparse' ? `a value whose sparse arrays declare ${excess.slots} slots` : `a value whose resizable ArrayBuffers reserve ${excess.reserved} bytes`;
    fail(found?.path ?? path, found?.what ?? whole, excessFix(excess));
  }
}

/**
 * Walks `value` (with `walkAll`), serializes it, frames it. The first walk goes through arrays
 * by index, which is cheap but sees neither holes' extent nor named properties (`a.label`):
 * JavaScript has no way to list an array's named properties without listing its indices as
 * strings too, which costs about 100 times the walk for a long array. So V8's output says
 * whether any array needs more: an array with named properties ends with a non-zero property
 * count, a holey one is written sparse (sdk/v8-scan.ts reports both); V8 sees only the copy
 * of an array that holds a marker, so the walk compares that array's own keys with its length
 * (about 1% of the walk of an array of refs). Only when one of these finds an array that needs
 * more, when the walk meets a hole, or when V8 refuses the value (the walk by keys names what
 * it refused), the value is walked again by keys; refs the first walk reported are not
 * reported again.
 */
function encodeWith(value: unknown, path: string, alloc: Allocator, onRef: RefSink | undefined, walkAll: (st: WalkState) => unknown): Uint8Array {
  const st = newState(onRef);
  const v = walkByIndex(st, walkAll);
  let refused: SerializationError | undefined;
  if (v !== REWALK) {
    // Without markers, the walk changed nothing but copies made on cycles: send the value itself.
    const sent = st.marked ? v : value;
    const header = serializeOrError(sent, st, path);
    // (Not `instanceof SerializationError`: the error classes' instanceof reads the prototype chain's names.)
    if (header instanceof Uint8Array) {
      checkHeader(header, sent, path);
      if (!scannedArraysNeedKeys()) return frame(header, st.segments, alloc);
    } else refused = header;
  }
  return encodeByKeys(value, path, alloc, onRef, walkAll, st.seen, refused);
}

/** The walk by index, or REWALK when it met a hole or an array with named properties. */
function walkByIndex(st: WalkState, walkAll: (st: WalkState) => unknown): unknown {
  try {
    return walkAll(st);
  } catch (err) {
    if (err !== REWALK) throw err;
    return REWALK;
  }
}

/** V8's serialization of what the walk gave, or the SerializationError saying V8 refused it. */
function serializeOrError(value: unknown, st: WalkState, path: string): Buffer | SerializationError {
  try {
    return serializeWalked(value, st, path);
  } catch (err) {
    return err as SerializationError;
  }
}

/**
 * `encodeWith` walking arrays by keys, after a first walk by index that reported the refs in
 * `reported` (not reported again). `refused`: V8 refused the first walk's value; what the walk
 * by keys names (a function among an array's named properties, say) is the better error, but
 * anything else it meets (a getter that throws) was V8's refusal.
 */
function encodeByKeys(
  value: unknown,
  path: string,
  alloc: Allocator,
  onRef: RefSink | undefined,
  walkAll: (st: WalkState) => unknown,
  reported: Map<object, unknown>,
  refused: SerializationError | undefined,
): Uint8Array {
  const st = newState(onRef && ((ref, p) => (reported.has(ref) ? undefined : onRef(ref, p))));
  st.keys = true;
  let v: unknown;
  try {
    v = walkAll(st);
  } catch (err) {
    throw refused && !(err instanceof VolleyError) ? refused : err;
  }
  const sent = st.marked ? v : value;
  const header = serializeWalked(sent, st, path);
  checkHeader(header, sent, path);
  return frame(header, st.segments, alloc);
}

/** The payload: V8's bytes alone, or framed with the raw segments. */
function frame(header: Buffer, segments: Uint8Array[], alloc: Allocator): Uint8Array {
  if (segments.length === 0) return header;
  let at = align8(5 + header.length);
  const total = segments.reduce((n, seg) => n + align8(seg.byteLength), at);
  const out = alloc(total);
  out[0] = FRAMED;
  new DataView(out.buffer, out.byteOffset, 5).setUint32(1, header.length, true);
  out.set(header, 5);
  for (const seg of segments) {
    out.set(seg, at);
    at += align8(seg.byteLength);
  }
  return out;
}

function newState(onRef?: RefSink): WalkState {
  return {
    seen: new Map(),
    marked: false,
    segments: [],
    onRef,
    refsNotAllowed: 'refs can be passed as task arguments, not stored inside results or put() values; return the value instead',
    refs: 0,
    refHolders: new Set(),
    keys: false,
  };
}

/** Encodes a task result or a `put` value; refs are allowed inside only when `onRef` collects them (a task's result). */
export function encode(value: unknown, path = 'value', alloc: Allocator = defaultAlloc, onRef?: RefSink): Uint8Array {
  if (compactable(value)) return compact(value);
  return encodeWith(value, path, alloc, onRef, (st) => walk(value, path, st));
}

/** Encodes a task's argument list; refs anywhere in arrays and plain objects are collected in order. */
export function encodeArgs(args: readonly unknown[], onRef: RefSink, alloc: Allocator = defaultAlloc): Uint8Array {
  if (compactable(args)) return compact(args);
  const withRefs = compactRefs(args, onRef);
  if (withRefs) return withRefs;
  return encodeWith(args, 'args', alloc, onRef, (st) => args.map((a, i) => walk(a, `args[${i}]`, st)));
}

/** Resolves a ref id found in encoded arguments to its value. */
export type RefResolver = (id: string) => unknown;

/** Raw segments of a framed payload, by index. */
type Segments = Uint8Array[];

function malformed(what: string): never {
  throw new ProtocolError(`malformed payload: ${what}; it was not made by this version of volley's encoder`);
}

/**
 * Decodes bytes made by `encode`/`encodeArgs`. The value never aliases `bytes`: binary data is
 * copied out, so a task may mutate its arguments, and two reads of one payload are independent.
 *
 * Bytes may come from anyone who can invoke a worker, so decoding costs time and memory in
 * proportion to `bytes.length`: every size the payload declares (frame header, segments, a
 * Matrix's shape, a typed array's length) is checked against the bytes present, each raw
 * segment is copied at most once, and sparse arrays are walked by their present elements, not
 * their length. A payload that breaks these rules is a ProtocolError.
 */
export function decode(bytes: Uint8Array, resolveRef?: RefResolver, owner?: unknown): unknown {
  if (bytes.length === 0) throw new SerializationError('cannot decode an empty payload', 'value');
  if (bytes[0] === COMPACT) return parseCompact(bytes);
  if (bytes[0] === COMPACT_REFS) return decodeCompactRefs(bytes, resolveRef);
  let value: unknown;
  let segments: Segments = [];
  let framed = false;
  if (bytes[0] === FRAMED) {
    framed = true;
    if (bytes.length < 5) malformed('a frame shorter than its header');
    const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 5).getUint32(1, true);
    if (headerLen > bytes.length - 5) malformed(`a frame header of ${headerLen} bytes in a payload of ${bytes.length}`);
    value = deserializeChecked(Uint8Array.prototype.slice.call(bytes, 5, 5 + headerLen));
    if (!isMarker(value) || value[MARK] !== 'root') malformed('a frame without a root marker');
    const segs = (value as { segs?: unknown }).segs;
    if (!Array.isArray(segs) || segs.length === 0) malformed('a frame without its segment list');
    let at = align8(5 + headerLen);
    segments = new Array(segs.length);
    for (let i = 0; i < segs.length; i++) {
      const len = segs[i] as unknown;
      if (typeof len !== 'number' || !Number.isSafeInteger(len) || len < 0 || len > bytes.length - at) {
        malformed(`segment ${i} declares ${String(len)} bytes, more than the ${bytes.length - at} left`);
      }
      segments[i] = bytes.subarray(at, at + len);
      at += align8(len);
    }
    if (at !== bytes.length) malformed(`${bytes.length - at} bytes after the last segment`);
  } else {
    // V8 makes typed arrays that view their input: give it a private copy.
    value = deserializeChecked(Uint8Array.prototype.slice.call(bytes));
  }
  if (!isMarker(value) || value[MARK] !== 'root') return value;
  if (!framed && (value as { segs?: unknown }).segs !== undefined) malformed('a segment list outside a frame');
  const keys = (value as { keys?: unknown }).keys;
  if (keys !== undefined && keys !== true) malformed('a root marker whose keys flag is not true');
  return revive(value.value, { resolveRef, segments, used: new Set(), budget: bytes.length, owner, keys: keys === true }, new Map());
}

function deserializeChecked(b: Uint8Array): unknown {
  // V8 allocates a sparse array of declared length up to 2^25 densely, before its elements,
  // and reserves a resizable ArrayBuffer's maximum length: the lengths are summed and bounded
  // by the bytes first (sdk/v8-scan.ts).
  const excess = scanV8(b);
  if (excess) throw new ProtocolError(`payload refused: it holds ${describeExcess(excess)}; ${excessFix(excess)}`);
  try {
    return deserialize(b);
  } catch (err) {
    return malformed(`V8's deserializer refused it (${(err as Error).message})`);
  }
}

interface ReviveContext {
  resolveRef?: RefResolver;
  segments: Segments;
  /** Segments already copied out: each may back one value only. */
  used: Set<number>;
  /** Array indices left to walk one by one: the payload's size, shared by every array in it. */
  budget: number;
  /** Who decodes: actor handles found inside are bound to it. */
  owner?: unknown;
  /** Arrays may hold markers among their named properties: walk them by keys (see `encodeWith`). */
  keys: boolean;
}

function isMarker(v: unknown): v is Marker {
  // biome-ignore lint/suspicious/noPrototypeBuiltins: on this hot path TurboFan inlines hasOwnProperty.call, not Object.hasOwn
  return typeof v === 'object' && v !== null && Object.prototype.hasOwnProperty.call(v, MARK);
}

const hasOwn = (o: object, k: string) => Object.hasOwn(o, k);

function reviveMarker(m: Marker, cx: ReviveContext, seen: Map<object, unknown>): unknown {
  if (seen.has(m)) return seen.get(m);
  let out: unknown;
  switch (m[MARK]) {
    case 'bare': {
      if (typeof m.props !== 'object' || m.props === null || Object.getPrototypeOf(m.props) !== Object.prototype) malformed('a bare-object marker without props');
      const o = Object.create(null) as Record<string, unknown>;
      seen.set(m, o);
      for (const [k, x] of Object.entries(m.props)) o[k] = revive(x, cx, seen);
      return o;
    }
    case 'root':
      return malformed('a nested root marker');
    case 'ref':
      if (typeof m.id !== 'string') malformed('a ref marker without an id');
      if (!cx.resolveRef) throw new SerializationError(`found a ref (${m.id}) where none can be resolved`, 'value');
      out = cx.resolveRef(m.id);
      break;
    case 'matrix': {
      const { rows, cols } = m;
      if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) malformed('a Matrix marker without integer dimensions');
      const data = revive(m.data, cx, seen);
      // The shape must match the data present: a Matrix is never allocated from a declared size.
      if (!(data instanceof Float64Array) || data.length !== rows * cols) malformed(`a ${rows}x${cols} Matrix marker whose data is not ${rows * cols} float64 values`);
      out = new Matrix(rows, cols, data);
      break;
    }
    case 'buffer': {
      const b = revive(m.bytes, cx, seen);
      if (!(b instanceof Uint8Array)) malformed('a Buffer marker without bytes');
      out = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      break;
    }
    case 'actor':
      if (!handleCodec) throw new SerializationError('found an actor handle, but the actor module is not loaded here', 'value');
      out = handleCodec.revive(m.handle, cx.owner);
      break;
    case 'bin': {
      const i = m.seg;
      if (!Number.isSafeInteger(i) || i < 0 || i >= cx.segments.length) malformed(`a binary marker for segment ${String(i)} of ${cx.segments.length}`);
      if (cx.used.has(i)) malformed(`segment ${i} used twice`);
      cx.used.add(i);
      const seg = cx.segments[i]!;
      if (typeof m.type !== 'string' || (m.type !== 'ArrayBuffer' && !hasOwn(BINARY_TYPES, m.type))) malformed(`a binary segment of unknown type ${JSON.stringify(m.type)}`);
      const Type = m.type === 'ArrayBuffer' ? undefined : BINARY_TYPES[m.type];
      const per = (Type as unknown as { BYTES_PER_ELEMENT?: number } | undefined)?.BYTES_PER_ELEMENT ?? 1;
      if (seg.byteLength % per !== 0) malformed(`a ${m.type} segment of ${seg.byteLength} bytes (not whole elements)`);
      const copy = new ArrayBuffer(seg.byteLength);
      new Uint8Array(copy).set(seg);
      out = Type ? new Type(copy, 0, seg.byteLength / per) : copy;
      break;
    }
    default:
      return malformed(`an unknown marker ${JSON.stringify(String((m as Record<string, unknown>)[MARK]).slice(0, 32))}`);
  }
  seen.set(m, out);
  return out;
}

/** Replaces markers in place; `seen` maps each visited object (or marker) to what replaces it. */
function revive(v: unknown, cx: ReviveContext, seen: Map<object, unknown>): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (isMarker(v)) return reviveMarker(v, cx, seen);
  if (seen.has(v)) return seen.get(v);
  seen.set(v, v);
  if (Array.isArray(v)) {
    if (!cx.keys && v.length <= cx.budget) {
      // Index walks together cost at most the payload's size; a longer array is sparse.
      cx.budget -= v.length;
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (typeof x === 'object' && x !== null) v[i] = revive(x, cx, seen);
      }
    } else {
      // Longer than what the payload can hold densely, or with named properties: walk the
      // elements present (not the holes) and the named properties.
      for (const k of Object.keys(v)) {
        const x = (v as unknown as Record<string, unknown>)[k];
        if (typeof x === 'object' && x !== null) (v as unknown as Record<string, unknown>)[k] = revive(x, cx, seen);
      }
    }
  } else if (v instanceof Map) {
    const entries = [...v.entries()];
    v.clear();
    for (const [k, x] of entries) v.set(revive(k, cx, seen), revive(x, cx, seen));
  } else if (v instanceof Set) {
    const items = [...v];
    v.clear();
    for (const x of items) v.add(revive(x, cx, seen));
  } else if (!ArrayBuffer.isView(v) && !(v instanceof Date) && !(v instanceof RegExp) && !(v instanceof ArrayBuffer)) {
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      const x = rec[k];
      if (typeof x === 'object' && x !== null) rec[k] = revive(x, cx, seen);
    }
  }
  return v;
}
