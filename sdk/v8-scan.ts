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
 * elements, and `decode` walks them by their elements.
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

/** What a refused payload declares. */
export interface SparseExcess {
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

/** Slots of sparse arrays a V8 payload of `bytes` bytes may declare. */
export function sparseAllowance(bytes: number): number {
  return SPARSE_FREE + SPARSE_PER_BYTE * bytes;
}

function bad(what: string, at: number): never {
  throw new ProtocolError(`malformed payload: ${what} at byte ${at} of its V8 serialization; it was not made by this version of volley's encoder`);
}

/** Read position of the scan in progress (module state, so that reading a varint allocates nothing). */
let at = 0;

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
      if (len > varint(b, end)) bad('a resizable ArrayBuffer longer than its maximum', at);
      skip(end, len, 'an ArrayBuffer');
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
 * arrays declare at most {@link sparseAllowance}(bytes) slots, else what they declare.
 * Time: linear in the number of tags (raw bytes are skipped, not read).
 */
export function scanV8(b: Uint8Array): SparseExcess | undefined {
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
  return slots <= allowed ? undefined : { bytes: end, slots, allowed, largest, elements };
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
  const seen = new Set<object>();
  const visit = (v: unknown, p: string): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    const o = inner(v);
    if (o !== v) {
      visit(o, p);
      return;
    }
    if (Array.isArray(v)) {
      const keys = Object.keys(v);
      if (v.length <= DENSE_MAX && keys.length < v.length && (!best || v.length > best.length)) best = { path: p, length: v.length, elements: keys.length };
      for (const k of keys) visit((v as unknown as Record<string, unknown>)[k], /^\d+$/.test(k) ? `${p}[${k}]` : `${p}.${k}`);
    } else if (v instanceof Map) {
      let i = 0;
      for (const [k, x] of v) {
        visit(k, `${p}.<key ${i}>`);
        visit(x, `${p}.get(${typeof k === 'string' ? JSON.stringify(k) : `<key ${i}>`})`);
        i++;
      }
    } else if (v instanceof Set) {
      let i = 0;
      for (const x of v) visit(x, `${p}.<item ${i++}>`);
    } else if (!ArrayBuffer.isView(v)) {
      for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], `${p}.${k}`);
    }
  };
  visit(value, path);
  return best;
}
