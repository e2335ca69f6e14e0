// Per-operator profiles of one step, lsmseg's (native/profiler.cc, over libtorch's RecordFunction callbacks) and
// PyTorch's (torch.autograd.profiler): the operators by self time, and the time spent outside any operator (the
// JavaScript or Python around them).
import type { OpStat } from "./common.ts";

export interface Profile { s: number; ops: OpStat[] }

/** The `n` operators with the most self time, times in ms. */
export function topOps(ops: OpStat[], n = 15): { name: string; calls: number; selfMs: number; totalMs: number }[] {
  return [...ops].sort((a, b) => b.selfUs - a.selfUs).slice(0, n)
    .map((o) => ({ name: o.name, calls: o.calls, selfMs: Math.round(o.selfUs) / 1000, totalMs: Math.round(o.totalUs) / 1000 }));
}

/** Wall time not inside any operator, in ms: the host language's share. */
export function outsideMs(p: Profile): number {
  const inside = p.ops.reduce((s, o) => s + o.selfUs, 0) / 1000;
  return Math.round(p.s * 1000 - inside);
}

export function printProfiles(label: string, ours: Profile, theirs: Profile | null, n = 15): void {
  console.log(`  profile of ${label} by self time (ms): lsmseg ${Math.round(ours.s * 1000)} ms wall, ${outsideMs(ours)} ms outside operators` +
    (theirs ? `; PyTorch (fair) ${Math.round(theirs.s * 1000)} ms wall, ${outsideMs(theirs)} ms outside operators` : ""));
  const a = topOps(ours.ops, n), b = theirs ? topOps(theirs.ops, n) : [];
  const cell = (o: { name: string; calls: number; selfMs: number } | undefined) => (o ? `${o.selfMs.toFixed(1).padStart(7)}  ${String(o.calls).padStart(4)}×  ${o.name}` : "").slice(0, 70).padEnd(70);
  console.log(`    ${"lsmseg".padEnd(70)}  PyTorch`);
  for (let i = 0; i < n; i++) console.log(`    ${cell(a[i])}  ${cell(b[i]).trimEnd()}`);
}
