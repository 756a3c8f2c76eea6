/** Building blocks for crafted V8 serialization payloads in the codec's bounds tests. */

/** LEB128, as V8 writes lengths. */
export const varint = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
