/**
 * A linear pre-scan of V8's serialization format: the bytes `node:v8` `serialize` writes and
 * `deserialize` reads (V8's src/objects/value-serializer.cc, format versions 14 and 15, with
 * Node's host objects of lib/v8.js for Buffers and typed arrays).
 *
 * Why: V8's deserializer allocates a sparse array ('a' tag) of a declared length up to 2^25
 * densely, 8 bytes per slot, before reading any element: 13 bytes can make it allocate 268 MB.
 * Nothing else in the format allocates more than a small multiple of its bytes (strings,
 * ArrayBuffers, BigInts and dense arrays are checked against the bytes present; elements added
 * one by one stay in dictionary mode unless about 1 slot in 10 is used: measured, at most
 * about 80 heap bytes per byte). So before `deserialize` runs, this scan
 * reads every tag, sums the lengths sparse arrays declare, and refuses the payload when they
 * exceed {@link SPARSE_FREE} slots plus {@link SPARSE_PER_BYTE} per byte of the payload.
 * Longer sparse arrays (above {@link DENSE_MAX}) cost nothing: V8 gives them dictionary
 * elements, and `decode` walks them by their elements. Likewise a resizable ArrayBuffer ('~'
 * tag) declares a maximum length that V8 reserves in address space, unchecked, up to 2^32-1
 * bytes for 9 bytes of payload (a few thousand of them exhaust a process's address space, and
 * every later ArrayBuffer allocation fails): the maximum lengths are summed and refused above
 * {@link RESERVE_FREE} plus {@link RESERVE_PER_BYTE} per byte.
 *
 * Written by hand: no package on the npm registry reads V8's serialization format, and the scan
 * needs only the framing of each tag (how many varints and raw bytes follow it), not the values.
 * It keeps no stack: every tag is followed by data of a size the tag and its varints give
 * (containers are a begin tag, their items as tags, an end tag), except a RegExp's and a String
 * object's string (read here inline). It allocates nothing unless it refuses.
 */
import { ProtocolError } from './errors.js';

/** Format versions read (Node.js 20's V8 writes 15; 14 added flags to array buffer views). */
const MIN_VERSION = 14;
const MAX_VERSION = 15;

/** Longest sparse array V8's deserializer allocates densely (V8's JSArray::kMaxFastArrayLength). */
export const DENSE_MAX = 2 ** 25;
/** Slots of sparse arrays any payload may declare (8 MiB of V8 heap): `a[999999] = x` still travels. */
export const SPARSE_FREE = 2 ** 20;
/**
 * More slots allowed per byte of the payload (64 heap bytes per byte, about what V8 spends on
 * elements added one by one to an array 1 in 10 full): a holey array whose elements take 4 to
 * 8 bytes each travels if at least 1 slot in 32 to 64 holds one.
 */
export const SPARSE_PER_BYTE = 8;

/**
 * Bytes of address space the resizable ArrayBuffers of any payload may reserve, together (their
 * maximum lengths): one that may grow to 64 MiB travels.
 */
export const RESERVE_FREE = 2 ** 26;
/** More bytes of reservation allowed per byte of the payload. */
export const RESERVE_PER_BYTE = 1024;

/** What a payload refused for its sparse arrays declares. */
export interface SparseExcess {
  kind: 'sparse';
  /** Size of the V8 payload scanned. */
  bytes: number;
  /** Slots its sparse arrays of at most {@link DENSE_MAX} declare, together. */
  slots: number;
  /** Slots a payload of `bytes` may declare. */
  allowed: number;
  /** The longest such array: its length, and how many elements it holds (-1 if unknown). */
  largest: number;
  elements: number;
}

/** What a payload refused for its resizable ArrayBuffers declares. */
export interface ReserveExcess {
  kind: 'resizable';
  /** Size of the V8 payload scanned. */
  bytes: number;
  /** Maximum lengths its resizable ArrayBuffers declare, together. */
  reserved: number;
  /** Bytes a payload of `bytes` may reserve. */
  allowed: number;
  /** The largest maximum length declared. */
  largest: number;
}

/** Why a payload is refused. */
export type V8Excess = SparseExcess | ReserveExcess;

/** Bytes of address space the resizable ArrayBuffers of a V8 payload of `bytes` bytes may reserve. */
export function reserveAllowance(bytes: number): number {
  return RESERVE_FREE + RESERVE_PER_BYTE * bytes;
}

/** Slots of sparse arrays a V8 payload of `bytes` bytes may declare. */
export function sparseAllowance(bytes: number): number {
  return SPARSE_FREE + SPARSE_PER_BYTE * bytes;
}

function bad(what: string, at: number): never {
  throw new ProtocolError(`malformed payload: ${what} at byte ${at} of its V8 serialization; it was not made by this version of volley's encoder`);
}

/** Read position of the scan in progress (module state, so that reading a varint allocates nothing). */
let at = 0;
/** Maximum lengths of the resizable ArrayBuffers the scan in progress met: their sum and the largest. */
let reserved = 0;
let reservedLargest = 0;
/** Whether the last payload scanned holds an array with named properties or holes (see {@link scannedArraysNeedKeys}). */
let arraysNeedKeys = false;

/**
 * Whether the last payload {@link scanV8} read holds an array that V8 wrote with named
 * properties or holes (a dense array whose end tag counts properties, a sparse one whose
 * property count is not its length): the encoder then walks arrays by their keys
 * (sdk/serialize.ts).
 */
export function scannedArraysNeedKeys(): boolean {
  return arraysNeedKeys;
}

function varint(b: Uint8Array, end: number): number {
  if (at >= end) bad('a truncated varint', at);
  let x = b[at++]!;
  if (x < 0x80) return x;
  let v = x & 0x7f;
  for (let shift = 7; ; shift += 7) {
    if (at >= end) bad('a truncated varint', at);
    x = b[at++]!;
    if (shift < 28) v |= (x & 0x7f) << shift;
    else v += (x & 0x7f) * 2 ** 28;
    if (x < 0x80) break;
    if (shift >= 28) bad('a varint longer than 5 bytes', at);
  }
  // V8 writes uint32 varints; longer values would be truncated by V8 differently than read here.
  if (v > 0xffffffff) bad(`a varint of ${v}, above 2^32-1`, at);
  return v;
}

function skip(end: number, n: number, what: string): void {
  if (n > end - at) bad(`${what} of ${n} bytes with ${end - at} left`, at);
  at += n;
}

/** The string a RegExp or String object holds (V8 reads it as a value that must be a string). */
function string(b: Uint8Array, end: number): void {
  for (;;) {
    if (at >= end) bad('a truncated string', at);
    const tag = b[at++]!;
    if (tag === 0x00) continue; // padding
    if (tag === 0x3f) {
      varint(b, end); // '?': an object count, ignored by V8
      continue;
    }
    if (tag !== 0x22 && tag !== 0x63 && tag !== 0x53) bad(`tag 0x${tag.toString(16)} where a string must be`, at - 1);
    skip(end, varint(b, end), 'a string');
    return;
  }
}

/** Tags volley's encoder rarely or never writes; reads from `at`. */
function rare(b: Uint8Array, end: number, tag: number): void {
  switch (tag) {
    case 0x7e: {
      // '~' resizable ArrayBuffer: length, maximum length, bytes
      const len = varint(b, end);
      const max = varint(b, end);
      if (len > max) bad('a resizable ArrayBuffer longer than its maximum', at);
      skip(end, len, 'an ArrayBuffer');
      reserved += max;
      if (max > reservedLargest) reservedLargest = max;
      return;
    }
    case 0x5a: // 'Z' BigInt
    case 0x7a: {
      // 'z' BigInt object: bitfield (sign bit, then byte length), digits
      const bitfield = varint(b, end);
      skip(end, (bitfield >>> 1) & 0x3fffffff, 'a BigInt');
      return;
    }
    case 0x5c: {
      // '\\' host object (Node's Buffers and typed arrays): type index, byte length, bytes
      varint(b, end);
      skip(end, varint(b, end), 'a typed array');
      return;
    }
    case 0x56: {
      // 'V' view of the ArrayBuffer before it: subtag, offset, length, flags. V8 reads the
      // subtag as an 8-bit varint (at most 3 bytes, not 5): it must be one byte here.
      if (at >= end || b[at]! >= 0x80) bad('an array buffer view without a one-byte subtag', at);
      at++;
      varint(b, end);
      varint(b, end);
      varint(b, end);
      return;
    }
    case 0x52: // 'R' RegExp: pattern, flags
      string(b, end);
      varint(b, end);
      return;
    case 0x73: // 's' String object
      string(b, end);
      return;
    default:
      // Errors ('r'), shared and transferred objects ('u', 'p', 't', 'm', 'w') and tags of
      // other versions: volley's encoder never writes them.
      bad(`tag 0x${tag.toString(16)} (${JSON.stringify(String.fromCharCode(tag))}), which volley's encoder never writes,`, at - 1);
  }
}

/**
 * Scans a V8 payload to its end. Throws ProtocolError if it is not V8's format (a version,
 * tag, or size this scan does not read, or a truncation); returns undefined when its sparse
 * arrays declare at most {@link sparseAllowance}(bytes) slots and its resizable ArrayBuffers
 * reserve at most {@link reserveAllowance}(bytes) bytes, else what they declare.
 * Time: linear in the number of tags (raw bytes are skipped, not read).
 */
export function scanV8(b: Uint8Array): V8Excess | undefined {
  const end = b.length;
  if (end < 2 || b[0] !== 0xff) bad('no version header', 0);
  at = 1;
  const version = varint(b, end);
  if (version < MIN_VERSION || version > MAX_VERSION) {
    bad(`V8 format version ${version} (volley reads versions ${MIN_VERSION} to ${MAX_VERSION})`, 1);
  }
  let slots = 0;
  let largest = 0;
  let elements = -1;
  reserved = reservedLargest = 0;
  arraysNeedKeys = false;
  // The hot loop keeps the position in a local and reads one-byte varints inline (a byte
  // below 0x80; past the end, `b[i]` is undefined and takes the checked path of `varint`).
  let i = at;
  let n = 0;
  while (i < end) {
    const tag = b[i++]!;
    switch (tag) {
      case 0x00: // padding
      case 0x5f: // '_' undefined
      case 0x30: // '0' null
      case 0x54: // 'T' true
      case 0x46: // 'F' false
      case 0x2d: // '-' the hole (in a dense array)
      case 0x6f: // 'o' begin object
      case 0x3b: // ';' begin Map
      case 0x27: // "'" begin Set
      case 0x79: // 'y' Boolean object true
      case 0x78: // 'x' Boolean object false
        break;
      case 0x49: // 'I' int32 (zigzag)
      case 0x55: // 'U' uint32
      case 0x5e: // '^' object reference
      case 0x3f: // '?' object count (ignored)
      case 0x7b: // '{' end object: property count
      case 0x3a: // ':' end Map: item count
      case 0x2c: // ',' end Set: item count
      case 0x41: {
        // 'A' begin dense array: length (V8 checks it against the bytes left)
        // A varint whose value is not needed: at most 5 bytes, the fifth at most 0x0f.
        let k = i;
        while (b[k]! >= 0x80 && k - i < 4) k++;
        if (k >= end || b[k]! >= (k - i === 4 ? 0x10 : 0x80)) {
          at = i;
          varint(b, end); // throws: truncated or too long
        }
        i = k + 1;
        break;
      }
      case 0x4e: // 'N' double
      case 0x44: // 'D' Date
      case 0x6e: // 'n' Number object
        if (end - i < 8) bad(`a double with ${end - i} bytes left`, i);
        i += 8;
        break;
      case 0x22: // '"' one-byte string
      case 0x63: // 'c' two-byte string
      case 0x53: // 'S' UTF-8 string
      case 0x42: // 'B' ArrayBuffer
        n = b[i]!;
        if (n < 0x80) i++;
        else {
          at = i;
          n = varint(b, end);
          i = at;
        }
        if (n > end - i) bad(`${tag === 0x42 ? 'an ArrayBuffer' : 'a string'} of ${n} bytes with ${end - i} left`, i);
        i += n;
        break;
      case 0x40: // '@' end sparse array: property count, length
      case 0x24: {
        // '$' end dense array: property count, length
        at = i;
        const props = varint(b, end);
        const len = varint(b, end);
        i = at;
        if (tag === 0x40 && len === largest && elements < 0) elements = props;
        // A dense array with properties has named ones; a sparse one (V8 writes every array of
        // a holey elements kind so, `new Array(n)` filled or `map`'s result too) as many
        // properties as its length unless it has holes or named properties. (Holes and named
        // properties of equal number are not told apart here: the encoder's walk finds holes.)
        if (tag === 0x24 ? props > 0 : props !== len) arraysNeedKeys = true;
        break;
      }
      case 0x61: {
        // 'a' begin sparse array: length (allocated densely by V8 up to DENSE_MAX)
        at = i;
        const len = varint(b, end);
        i = at;
        if (len <= DENSE_MAX) {
          slots += len;
          if (len > largest) {
            largest = len;
            elements = -1;
          }
        }
        break;
      }
      default:
        at = i;
        rare(b, end, tag);
        i = at;
    }
  }
  const allowed = sparseAllowance(end);
  if (slots > allowed) return { kind: 'sparse', bytes: end, slots, allowed, largest, elements };
  const reservable = reserveAllowance(end);
  return reserved <= reservable ? undefined : { kind: 'resizable', bytes: end, reserved, allowed: reservable, largest: reservedLargest };
}

/** What in a refused payload is named: its longest sparse array, or its largest resizable ArrayBuffer. */
export function describeExcess(x: V8Excess): string {
  return x.kind === 'sparse' ? describeSparse(x.largest, x.elements) : `a resizable ArrayBuffer of maximum length ${x.largest}`;
}

/** Why a payload is refused, and how to send its value instead. */
export function excessFix(x: V8Excess): string {
  if (x.kind === 'sparse') return sparseFix(x);
  return (
    `V8's deserializer reserves the maximum length of every resizable ArrayBuffer, so the resizable ArrayBuffers in one value may declare ` +
    `at most ${RESERVE_FREE} bytes plus ${RESERVE_PER_BYTE} per byte of its encoding (${x.allowed} for these ${x.bytes} bytes; ${x.reserved} declared): ` +
    'send a fixed-length copy (buffer.slice(0)) and make it resizable again where it is used'
  );
}

/**
 * Where in `value` the refused part is, and what it is, to name it in an error: its largest
 * holey array, or its resizable ArrayBuffer of the largest maximum length (see {@link findSparse}
 * for `inner`). Undefined when it is not found (then the whole value is named).
 */
export function findExcess(x: V8Excess, value: unknown, path: string, inner?: (o: object) => unknown): { path: string; what: string } | undefined {
  if (x.kind === 'sparse') {
    const found = findSparse(value, path, inner);
    return found && { path: found.path, what: describeSparse(found.length, found.elements) };
  }
  let best: { path: string; max: number } | undefined;
  visitObjects(value, path, inner, (v, p) => {
    const ab = v as { resizable?: boolean; maxByteLength?: number };
    if (v instanceof ArrayBuffer && ab.resizable === true && (!best || ab.maxByteLength! > best.max)) best = { path: p, max: ab.maxByteLength! };
  });
  return best && { path: best.path, what: `a resizable ArrayBuffer of maximum length ${best.max}` };
}

/** "a sparse array of length N with K elements" (K omitted when unknown). */
export function describeSparse(length: number, elements: number): string {
  return elements < 0 ? `a sparse array of length ${length}` : `a sparse array of length ${length} with ${elements} element${elements === 1 ? '' : 's'}`;
}

/** Why a value over the allowance is refused, and how to send it instead. */
export function sparseFix(x: SparseExcess): string {
  return (
    `V8's deserializer allocates every slot of a sparse array of length up to 2^25, so the sparse arrays in one value may declare ` +
    `at most 2^20 slots plus ${SPARSE_PER_BYTE} per byte of its encoding (${x.allowed} for these ${x.bytes} bytes; ${x.slots} declared): send a dense array (fill the holes, e.g. with null) or a Map from index to element`
  );
}

/** The largest holey array (of length at most {@link DENSE_MAX}) in a value: where, how long, how full. */
export interface SparseFound {
  path: string;
  length: number;
  elements: number;
}

/**
 * Finds the largest holey array under `value` (through arrays, plain objects, Maps and Sets),
 * to name it in an error: only called once a value is refused. `inner` maps each object to
 * what to look inside instead (a wrapper to what it wraps), or undefined to skip it.
 */
export function findSparse(value: unknown, path: string, inner: (o: object) => unknown = (o) => o): SparseFound | undefined {
  let best: SparseFound | undefined;
  visitObjects(value, path, inner, (v, p) => {
    if (!Array.isArray(v)) return;
    const elements = Object.keys(v).length;
    if (v.length <= DENSE_MAX && elements < v.length && (!best || v.length > best.length)) best = { path: p, length: v.length, elements };
  });
  return best;
}

/** Calls `visit` on every object under `value` (through arrays, plain objects, Maps and Sets), once each, with its path. */
function visitObjects(value: unknown, path: string, inner: (o: object) => unknown = (o) => o, visit: (o: object, path: string) => void): void {
  const seen = new Set<object>();
  const walk = (v: unknown, p: string): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    const o = inner(v);
    if (o !== v) {
      walk(o, p);
      return;
    }
    visit(v, p);
    if (Array.isArray(v)) {
      for (const k of Object.keys(v)) walk((v as unknown as Record<string, unknown>)[k], /^\d+$/.test(k) ? `${p}[${k}]` : `${p}.${k}`);
    } else if (v instanceof Map) {
      let i = 0;
      for (const [k, x] of v) {
        walk(k, `${p}.<key ${i}>`);
        walk(x, `${p}.get(${typeof k === 'string' ? JSON.stringify(k) : `<key ${i}>`})`);
        i++;
      }
    } else if (v instanceof Set) {
      let i = 0;
      for (const x of v) walk(x, `${p}.<item ${i++}>`);
    } else if (!ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer)) {
      for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], `${p}.${k}`);
    }
  };
  walk(value, path);
}
