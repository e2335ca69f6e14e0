// The memory check on a real network: 1,000 AdamW training steps of a tiny U-Net, each inside
// tidy(), keep the number of live tensors constant and grow the heap's bytes in use by less than 5 %.
//
// The bytes in use are glibc's count (mallinfo2, heapBytesInUse), not resident memory: the heap is kept untrimmed,
// so one transient peak anywhere in the process stays resident. Resident memory made this test flaky on a loaded
// CI machine (one 54 MB jump between steps 800 and 900, 25.26 % against a 25 % bound) with the live tensor count
// constant. Where glibc's count is missing, it falls back to resident memory.
//
// The loop yields to the event loop after each step, as a training loop fed by the data loader does.
// Node 20 runs Node-API finalizers from setImmediate: a loop that never yields keeps every disposed
// tensor's small native handle (not its data) until it does, ~10-15 kB per step of this net, a steady
// 4-6 % over 900 steps here (measured; with the yield, RSS stayed within 0.2 % over 1,200 steps).
import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import * as T from "../../src/torch/index.ts";
import { UNet } from "../../src/nn/index.ts";
import { AdamW, clipGradNorm, poly } from "../../src/optim/index.ts";
import { heapBytesInUse } from "../../src/util/heap.ts";

test("1,000 training steps of a tiny U-Net (AdamW, tidy) keep live tensors constant and grow the heap in use < 5 %", async () => {
  // One intra-op thread: tiny ops gain nothing from more, and OpenMP spinning on a loaded machine
  // only makes the test slower.
  const threads = T.getNumThreads();
  T.setNumThreads(1);
  T.manualSeed(0);
  // x: [1, 1, 8, 8, 8] → U-Net 4/8 → logits [1, 2, 8, 8, 8]
  const net = new UNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3] });
  const opt = new AdamW(net.parameters(), { lr: 1e-2 });
  const schedule = poly(1e-2, 1000);
  const x = T.randn([1, 1, 8, 8, 8]);
  const y = T.tidy(() => T.avgPool3d(x, 3, { stride: 1, padding: 1 }).gt(0).long().squeeze(1)); // a learnable target

  const step = (t: number): number => T.tidy(() => {
    opt.lr = schedule(t);
    const loss = T.crossEntropy(net.forward(x) as T.Tensor, y);
    opt.zeroGrad();
    loss.backward();
    clipGradNorm(net.parameters(), 12);
    opt.step();
    return loss.item();
  });

  const firstLoss = step(0);
  const baseLive = T.liveTensors().tensors;
  const inUse = (): number => heapBytesInUse() ?? process.memoryUsage().rss;
  const what = heapBytesInUse() === null ? "resident memory" : "the heap in use";
  const rss: number[] = []; // after steps 100, 200, ..., 1000
  let lastLoss = firstLoss;
  for (let t = 1; t <= 1000; t++) {
    lastLoss = step(t);
    await nextTurn();
    if (t % 100 === 0) {
      assert.equal(T.liveTensors().tensors, baseLive, `live tensors after step ${t}`);
      rss.push(inUse());
    }
  }
  // A leak grows memory at a steady rate; one-off jumps (a cache filling, or with resident memory a transient peak
  // the untrimmed heap keeps: up to ~54 MB, measured) land in one or two of the nine 100-step windows. The median
  // window's growth is the steady rate.
  const windows = rss.slice(1).map((r, i) => r - rss[i]).sort((a, b) => a - b);
  const steady = (windows[4] * 9) / rss[0];
  const total = (rss[9] - rss[0]) / rss[0];
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  const report = `${what} after steps 100..1000 (MiB): ${rss.map(mb).join(", ")}`;
  console.log(`# ${report}`);
  assert.ok(steady < 0.05, `${what} grows at a steady ${(steady * 100).toFixed(2)} % per 900 steps; ${report}`);
  assert.ok(total < 0.25, `${what} grew ${(total * 100).toFixed(2)} % between steps 100 and 1000; ${report}`);
  assert.ok(lastLoss < 0.5 * firstLoss, `the net learns: loss ${firstLoss} → ${lastLoss}`);

  T.setNumThreads(threads);
  net.dispose();
  for (const t of [x, y]) t.dispose();
  assert.equal(T.liveTensors().tensors, baseLive - net.stateDict().size - 2);
});
