// Binary masks as 0/1 bytes, read four voxels at a time where that pays (counting, skipping background):
// a Uint8Array that starts on a 4-byte boundary can be viewed as 32-bit words, and for 0/1 bytes a
// word's voxel count is the sum of its bytes, Math.imul(w, 0x01010101) >>> 24.

/** Whether every value is 0 or 1. */
function isZeroOne(mask: Uint8Array): boolean {
  const words = wordsOf(mask);
  for (let w = 0; w < words.length; w++) if ((words[w] & 0xfefefefe) !== 0) return false;
  for (let i = words.length * 4; i < mask.length; i++) if (mask[i] > 1) return false;
  return true;
}

/** Masks checked once for the span of one case's metrics, with their counts of ones (withBinaryMasks). */
const checked = new WeakMap<Uint8Array, number>();

/**
 * Runs fn with 0/1 masks (asBinary's) known as such, and with their counts of ones: the metrics of one case
 * (Dice, then the skeletons or the components) then check and count each mask once, not in every metric. fn must
 * not write to them; they are forgotten when it returns.
 */
export function withBinaryMasks<T>(masks: Uint8Array[], fn: () => T): T {
  for (const m of masks) checked.set(m, countOnes(m));
  try {
    return fn();
  } finally {
    for (const m of masks) checked.delete(m);
  }
}

/** The number of ones in a 0/1 mask: withBinaryMasks's count where it has one, else counted. */
export function onesOf(mask: Uint8Array): number {
  return checked.get(mask) ?? countOnes(mask);
}

/**
 * 0/1 per voxel (value > 0), on a 4-byte boundary: the mask itself when it is such a Uint8Array already
 * (never written to by the metrics), else a copy.
 */
export function asBinary(mask: ArrayLike<number>): Uint8Array {
  if (mask instanceof Uint8Array && checked.has(mask)) return mask;
  if (mask instanceof Uint8Array && mask.byteOffset % 4 === 0 && isZeroOne(mask)) return mask;
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] > 0 ? 1 : 0;
  return out;
}

/** The whole 32-bit words of a Uint8Array that starts on a 4-byte boundary (the last length % 4 bytes are not in it). */
export function wordsOf(mask: Uint8Array): Uint32Array {
  if (mask.byteOffset % 4 !== 0) throw new Error(`a mask at byte offset ${mask.byteOffset} cannot be read as 32-bit words`);
  return new Uint32Array(mask.buffer, mask.byteOffset, mask.length >>> 2);
}

/** The number of ones in a 0/1 mask (asBinary's), and of voxels set in both of two such masks. */
export function countOnes(a: Uint8Array, b?: Uint8Array): number {
  const wa = wordsOf(a), wb = b ? wordsOf(b) : null;
  let n = 0;
  if (wb) for (let w = 0; w < wa.length; w++) n += Math.imul(wa[w] & wb[w], 0x01010101) >>> 24;
  else for (let w = 0; w < wa.length; w++) n += Math.imul(wa[w], 0x01010101) >>> 24;
  for (let i = wa.length * 4; i < a.length; i++) n += b ? a[i] & b[i] : a[i];
  return n;
}
