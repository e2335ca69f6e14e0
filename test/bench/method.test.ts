// The benchmarks' shared method (bench/common.ts) and their FLOP count (bench/flops.ts), checked without timing:
// the order in which sides run, the statistics of given times, and FLOPs counted by hand for a tiny network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { interleave } from "../../bench/common.ts";
import { unetForwardFlops, unetStepFlops } from "../../bench/flops.ts";

test("interleave: one warm-up of each side, then the sides in turn; min and median of the timed runs only", async () => {
  const order: string[] = [];
  const times = { a: [9, 3, 1, 2], b: [8, 5, 7, 6] }; // the first of each is the warm-up
  const side = (label: "a" | "b") => ({ label, rep: () => { order.push(label); return times[label].shift()!; } });
  const r = await interleave([side("a"), side("b")], 3, { quiet: true });
  assert.deepEqual(order, ["a", "b", "a", "b", "a", "b", "a", "b"]);
  assert.deepEqual(r.times.a, { min: 1, median: 2, reps: [3, 1, 2] });
  assert.deepEqual(r.times.b, { min: 5, median: 6, reps: [5, 7, 6] });
  assert.equal(r.load.before.length, 3);
});

test("unetForwardFlops counts 2·Cin·Cout·k³ per output voxel, by hand for a two-stage network", () => {
  // features [2, 4], 1 input channel, 3 classes, patch 4:
  //   stage 0 (4³ = 64 voxels): 1→2 and 2→2, k 3        2·1·2·27·64 + 2·2·2·27·64 = 6912 + 13824
  //   stage 1 (2³ = 8 voxels):  2→4 (stride 2), 4→4      2·2·4·27·8 + 2·4·4·27·8  = 3456 + 6912
  //   up 4→2 (k 2, to 64 voxels), 4→2 and 2→2 (k 3)     2·4·2·8·64 + 2·4·2·27·64 + 2·2·2·27·64 = 8192 + 27648 + 13824
  //   head 2→3 (k 1, 64 voxels)                          2·2·3·64 = 768
  const total = 6912 + 13824 + 3456 + 6912 + 8192 + 27648 + 13824 + 768;
  const f = unetForwardFlops(4, { features: [2, 4], inChannels: 1, classes: 3 });
  assert.equal(f.total, total);
  assert.equal(f.firstConv, 6912);
  assert.equal(unetStepFlops(4, 2, { features: [2, 4], inChannels: 1, classes: 3 }), 2 * (3 * total - 6912));
});
