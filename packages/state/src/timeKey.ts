/**
 * Order-preserving fixed-width encoding of timestamps (and segment ids) inside byte-string keys:
 * 8 bytes, big-endian, sign bit flipped, so that byte order equals numeric order, negatives included.
 */
const TWO32 = 4294967296;

export function encodeTs(t: number): string {
  const hi = Math.floor(t / TWO32);
  const lo = t - hi * TWO32;
  const h = (hi + 0x80000000) >>> 0;
  return String.fromCharCode(
    h >>> 24,
    (h >>> 16) & 255,
    (h >>> 8) & 255,
    h & 255,
    lo >>> 24,
    (lo >>> 16) & 255,
    (lo >>> 8) & 255,
    lo & 255,
  );
}

export function decodeTs(s: string, at: number): number {
  const h = s.charCodeAt(at) * 16777216 + (s.charCodeAt(at + 1) << 16) + (s.charCodeAt(at + 2) << 8) + s.charCodeAt(at + 3);
  const lo = s.charCodeAt(at + 4) * 16777216 + (s.charCodeAt(at + 5) << 16) + (s.charCodeAt(at + 6) << 8) + s.charCodeAt(at + 7);
  return (h - 0x80000000) * TWO32 + lo;
}

export const TS_WIDTH = 8;
