// lsmseg curate end to end: a phantom with known tissue and special tiles, the synthetic raw volumes, the Task 1
// layout that pretraining reads, and kill -9 + --resume giving the manifest and files of an uninterrupted run.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { curate, keptFiles, readManifest } from "../../src/curate/index.ts";
import { unannotatedCases } from "../../src/data/dataset.ts";
import { makeVolume, readVolume, writeVolume } from "../../src/io/index.ts";
import { synthDataset } from "../../src/synth/index.ts";
import { PATCH, SHAPE, SPECIAL, TISSUE, phantom } from "./phantom.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
let dir = "";
let raw: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "lsmseg-curate-"));
  await synthDataset(join(dir, "synth"), { preset: "tiny", seed: 5, quiet: true, overrides: { unannotatedPerType: 0, annotatedPerType: 0, testPerType: 0 } });
  raw = [join(dir, "synth", "raw", "volume01_cfos_neuron"), join(dir, "synth", "raw", "volume02_blood_vessel.ome.zarr")];
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("phantom: tissue tiles kept, background and special tiles rejected with their reason", async () => {
  const input = join(dir, "phantom_cell_nuclei");
  await writeVolume(input, makeVolume("uint16", SHAPE, [1, 1, 1], phantom()));
  const out = join(dir, "phantom_out");
  const s = await curate({ inputs: [input], out, patch: PATCH, workers: 0, quiet: true });
  const lines = readManifest(join(out, "manifest.jsonl"));
  assert.equal(lines.length, 3 * 6 * 6);
  const byStart = new Map(lines.map((l) => [l.start.join(","), l]));
  for (const l of lines) {
    const [, y, x] = l.start;
    const inside = y >= TISSUE.y[0] && y < TISSUE.y[1] && x >= TISSUE.x[0] && x < TISSUE.x[1];
    if (!inside) assert.equal(l.reason, "background", `tile ${l.start} lies outside the tissue`);
    if (l.kept) assert.ok(inside);
  }
  assert.equal(byStart.get(SPECIAL.saturated.join(","))!.reason, "saturated");
  assert.equal(byStart.get(SPECIAL.featureless.join(","))!.reason, "featureless");
  assert.equal(byStart.get(SPECIAL.blurred.join(","))!.reason, "out-of-focus");
  assert.equal(byStart.get(SPECIAL.original.join(","))!.kept, true);
  assert.equal(byStart.get(SPECIAL.duplicate.join(","))!.reason, "duplicate");
  // every other tissue tile is kept: 3 × 4 × 4 tissue tiles less the four special rejections
  assert.equal(s.kept, 48 - 4);
  assert.equal(s.rejected.background, 108 - 48);
  // the kept tiles are the phantom's voxels, in the Task 1 layout that pretraining reads
  const cases = unannotatedCases(out);
  assert.equal(cases.length, s.kept);
  assert.ok(cases.every((c) => c.structure === "cell_nuclei" && c.category === "isolated"));
  const first = lines.find((l) => l.kept)!;
  const tile = await readVolume(join(out, first.file!));
  const whole = phantom();
  const [z0, y0, x0] = first.start;
  assert.equal(tile.data[0], whole[(z0 * SHAPE[1] + y0) * SHAPE[2] + x0]);
  assert.deepEqual(tile.shape, [PATCH, PATCH, PATCH]);
  for (const f of ["summary.json", "contact_kept.png", "contact_rejected.png", "volumes/phantom_cell_nuclei/mip.png", "volumes/phantom_cell_nuclei/overview.ome.zarr"]) {
    assert.ok(existsSync(join(out, f)), f);
  }
  await assert.rejects(curate({ inputs: [input], out, patch: PATCH, workers: 0, quiet: true }), /--resume/);
});

test("synthetic raw volumes (TIFF planes and OME-Zarr): kept tiles lie in the tissue, corner tiles are background", async () => {
  const out = join(dir, "synth_out");
  const s = await curate({ inputs: raw, out, patch: 16, workers: 0, quiet: true });
  assert.ok(s.kept > 0 && s.kept < s.tiles);
  const lines = readManifest(join(out, "manifest.jsonl"));
  for (const [v, path] of raw.entries()) {
    const vol = await readVolume(path);
    const [nz, ny, nx] = vol.shape;
    // the background level: the rows and columns at the y/x border are outside every synthetic specimen
    const border: number[] = [];
    for (let z = 0; z < nz; z++) for (let i = 0; i < nx; i++) border.push(vol.data[(z * ny) * nx + i], vol.data[(z * ny + ny - 1) * nx + i]);
    border.sort((a, b) => a - b);
    const bg99 = border[Math.floor(0.99 * border.length)];
    const mine = lines.filter((l) => l.volume === s.volumes[v].name);
    assert.equal(mine.length, 2 * 5 * 5);
    for (const l of mine.filter((m) => m.kept)) assert.ok(l.stats.p50! > bg99, `kept tile ${l.start} of ${l.volume}: median ${l.stats.p50} ≤ background p99 ${bg99}`);
    for (const corner of ["0,0,0", "0,0,64", "0,64,0", "16,64,64"]) {
      assert.equal(mine.find((l) => l.start.join(",") === corner)!.reason, "background");
    }
  }
  assert.equal(readManifest(join(out, "manifest.jsonl")).length, s.tiles);
});

test("readManifest drops a trailing half line and keeps complete ones", () => {
  const p = join(dir, "half.jsonl");
  writeFileSync(p, '{"volume":"a","index":0}\n{"volume":"a","ind');
  assert.equal(readManifest(p).length, 1);
  assert.equal(readFileSync(p, "utf8"), '{"volume":"a","index":0}\n');
});

test("kill -9 part-way and --resume: the manifest and tiles of an uninterrupted run, no duplicates or half lines", async () => {
  const args = ["--patch", "16", "--stride", "8", "--quiet"];
  const straight = join(dir, "straight");
  await curate({ inputs: raw, out: straight, patch: 16, stride: 8, workers: 0, quiet: true });
  const killed = join(dir, "killed");
  const cli = (extra: string[]) => [join(root, "bin", "lsmseg.js"), "curate", ...raw.flatMap((r) => ["--in", r]), "--out", killed, "--workers", "2", ...args, ...extra];
  // the killed run: curate() as the CLI calls it, each task slowed so that the kill lands part-way
  const options = { inputs: raw, out: killed, workers: 2, patch: 16, stride: 8, quiet: true, tissue: { method: "otsu" }, taskDelayMs: 40 };
  const child = spawn(process.execPath, ["--import", "tsx", join(root, "test", "curate", "curate_child.ts"), JSON.stringify(options)], { cwd: root, stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  let linesAtKill = 0;
  while (child.exitCode === null) {
    const m = join(killed, "manifest.jsonl");
    linesAtKill = existsSync(m) ? readFileSync(m, "utf8").split("\n").length - 1 : 0;
    if (linesAtKill >= 30) { child.kill("SIGKILL"); break; }
    await new Promise((r) => setTimeout(r, 20));
  }
  await exited;
  const total = readManifest(join(straight, "manifest.jsonl")).length;
  assert.ok(linesAtKill < total, `killed part-way (${linesAtKill} of ${total} lines)`);
  const resumed = spawn(process.execPath, cli(["--resume"]), { stdio: "ignore" });
  const code = await new Promise<number | null>((resolve) => resumed.on("exit", resolve));
  assert.equal(code, 0);
  const a = readFileSync(join(straight, "manifest.jsonl"), "utf8"), b = readFileSync(join(killed, "manifest.jsonl"), "utf8");
  assert.ok(b.endsWith("\n"));
  const keys = readManifest(join(killed, "manifest.jsonl")).map((l) => `${l.volume}#${l.index}`);
  assert.equal(new Set(keys).size, keys.length, "no tile recorded twice");
  assert.equal(b, a, "the same manifest, line for line");
  assert.deepEqual(keptFiles(killed), keptFiles(straight));
  for (const f of keptFiles(straight)) assert.ok(readFileSync(join(killed, f)).equals(readFileSync(join(straight, f))), f);
  assert.ok(!existsSync(join(killed, ".staging")));
});
