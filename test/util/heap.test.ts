// tuneHeap: with glibc's settings from native/malloc.cc, a volume-sized ArrayBuffer allocated again after the
// last one was freed reuses mapped pages instead of faulting them in anew (counted, not timed).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const heap = fileURLToPath(new URL("../../src/util/heap.ts", import.meta.url));
// allocates and fills 64 MiB, frees it, then counts the minor page faults of doing it again: the fewest of five
// rounds, since V8 may free the last buffer on a background thread after gc() returns (Node 24 does, sometimes)
const script = `
const { tuneHeap } = await import(${JSON.stringify(heap)});
const tuned = tuneHeap();
const round = () => { let a = new Uint8Array(64 << 20); a.fill(1); a = null; globalThis.gc(); };
round(); round();
let faults = Infinity;
for (let i = 0; i < 5; i++) {
  const before = process.resourceUsage().minorPageFault;
  round();
  faults = Math.min(faults, process.resourceUsage().minorPageFault - before);
}
console.log(JSON.stringify({ tuned, faults }));`;

// V8 frees an unreachable ArrayBuffer's memory on a background thread after gc(); when that thread is late (a loaded
// machine), the next 64 MiB cannot reuse it and faults in fresh pages whatever the heap settings. Sweeping on the
// main thread makes the free happen inside gc(), so the count measures the heap settings alone.
function faults(env: NodeJS.ProcessEnv): { tuned: boolean; faults: number } {
  const r = spawnSync(process.execPath, ["--expose-gc", "--no-concurrent-array-buffer-sweeping", "--import", "tsx", "--input-type=module", "-e", script], { env: { ...process.env, ...env }, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { tuned: boolean; faults: number };
}

test("tuneHeap: a freed 64 MiB buffer's pages are reused, not faulted in again (LSMSEG_MALLOC=default: 16,384 faults)", () => {
  const plain = faults({ LSMSEG_MALLOC: "default" });
  const tuned = faults({ LSMSEG_MALLOC: "" });
  assert.equal(plain.tuned, false);
  assert.equal(tuned.tuned, true);
  // 64 MiB is 16,384 pages of 4 KiB: glibc's default maps it afresh each time
  assert.ok(plain.faults > 12_000, `default heap: ${plain.faults} faults`);
  assert.ok(tuned.faults < plain.faults / 8, `tuned heap: ${tuned.faults} faults vs ${plain.faults}`);
});
