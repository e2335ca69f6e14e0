// The word-at-a-time mask helpers against a plain loop: counts over many words and a ragged tail,
// the 0/1 check, masks that are not 0/1 or not on a 4-byte boundary, and the counts withBinaryMasks hands out.
import assert from "node:assert/strict";
import { test } from "node:test";
import { asBinary, binaryWithCount, countOnes, onesOf, withBinaryMasks } from "../../src/eval/binary.ts";

function randomMask(n: number, p: number, seed: number): Uint8Array {
  const m = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    m[i] = s / 2 ** 32 < p ? 1 : 0;
  }
  return m;
}
const plainCount = (a: Uint8Array, b?: Uint8Array) => a.reduce((n, v, i) => n + (b ? (v > 0 && b[i] > 0 ? 1 : 0) : v > 0 ? 1 : 0), 0);

test("countOnes and binaryWithCount count as a plain loop, ragged tails included", () => {
  for (const [n, p] of [[0, 0.5], [3, 1], [1021, 1], [255 * 4 * 3 + 7, 0.5], [100_003, 0.9], [100_000, 0.01]] as const) {
    const a = randomMask(n, p, n + 1), b = randomMask(n, 0.5, n + 2);
    assert.equal(countOnes(a), plainCount(a), `ones of ${n}`);
    assert.equal(countOnes(a, b), plainCount(a, b), `ones in both of ${n}`);
    const c = binaryWithCount(a);
    assert.equal(c.mask, a, "a 0/1 mask is used as it is");
    assert.equal(c.ones, plainCount(a));
  }
});

test("a mask that is not 0/1 or not on a 4-byte boundary is copied as 0/1, and counted", () => {
  const a = randomMask(4099, 0.5, 7);
  a[4000] = 2; // in the words
  const c = binaryWithCount(a);
  assert.notEqual(c.mask, a);
  assert.deepEqual([...c.mask], [...a].map((v) => (v > 0 ? 1 : 0)));
  assert.equal(c.ones, plainCount(a));
  const tail = randomMask(4099, 0.5, 8);
  tail[4098] = 255; // in the ragged tail
  assert.notEqual(asBinary(tail), tail);
  const shifted = new Uint8Array(randomMask(4100, 0.5, 9).buffer, 1, 4099);
  const s = binaryWithCount(shifted);
  assert.equal(s.mask.byteOffset % 4, 0);
  assert.equal(s.ones, plainCount(shifted));
});

test("withBinaryMasks hands out its counts while fn runs, and forgets them after", () => {
  const a = randomMask(10_000, 0.3, 11);
  const c = binaryWithCount(a);
  const inside = withBinaryMasks([c], () => { a.fill(0); return onesOf(a); }); // the count is the one it was given
  assert.equal(inside, c.ones);
  assert.equal(onesOf(a), 0, "counted again after fn returned");
});
