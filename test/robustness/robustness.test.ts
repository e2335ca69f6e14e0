// Bad inputs, one row each, across flags, outputs, readers, training, prediction and serve: the exit code (2 for
// a usage error, 1 for failed work), a message that names the culprit (the flag, the file or the field), nothing
// the user had destroyed, and no output or temporary file left behind. The CLI runs in this process (main());
// serve's rows, which are about a process exiting, spawn it (helpers.ts).
import assert from "node:assert/strict";
import { type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { readRegion, writeVolume, makeVolume } from "../../src/io/index.ts";
import { niftiHeader } from "../../src/io/nifti.ts";
import { synthDataset } from "../../src/synth/index.ts";
import { cli, leftovers, startCli, tinyModel, writeRamp } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-robust-"));
const p = (...parts: string[]) => join(dir, ...parts);
after(() => rmSync(dir, { recursive: true, force: true }));

// fixtures every row may use, made once
let data = "", model = "";
before(async () => {
  await writeRamp(p("in.nii.gz"));
  await writeRamp(p("in.mha"));
  // a gzipped NIfTI cut by its trailer's 4 and 8 bytes, and one with a wrong CRC-32
  const gz = readFileSync(p("in.nii.gz"));
  writeFileSync(p("cut4.nii.gz"), gz.subarray(0, gz.length - 4));
  writeFileSync(p("cut8.nii.gz"), gz.subarray(0, gz.length - 8));
  const bad = Buffer.from(gz);
  bad[bad.length - 6] ^= 0xff;
  writeFileSync(p("crc.nii.gz"), bad);
  // MetaImage headers pointing outside their folder
  mkdirSync(p("outside"));
  writeFileSync(p("outside", "secret.raw"), Buffer.alloc(4 * 8 * 8 * 2, 7));
  mkdirSync(p("mha"));
  const mhd = (dataFile: string) => `ObjectType = Image\nNDims = 3\nDimSize = 8 8 4\nElementType = MET_USHORT\nElementDataFile = ${dataFile}\n`;
  writeFileSync(p("mha", "dotdot.mha"), mhd("../outside/secret.raw"));
  writeFileSync(p("mha", "absolute.mha"), mhd(p("outside", "secret.raw")));
  symlinkSync(p("outside", "secret.raw"), p("mha", "link.raw"));
  writeFileSync(p("mha", "link.mhd"), mhd("link.raw"));
  // folders with volume names, a plane folder with a gap and one with a mismatched plane
  mkdirSync(p("folder.tif"));
  writeFileSync(p("folder.tif", "keep.txt"), "mine");
  mkdirSync(p("folder.mha"));
  mkdirSync(p("gap"));
  mkdirSync(p("mismatch"));
  for (const z of [0, 1, 3]) await writeVolume(p("gap", `z${z}.tif`), makeVolume("uint8", [1, 8, 8], [1, 1, 1]));
  await writeVolume(p("mismatch", "z0.tif"), makeVolume("uint8", [1, 8, 8], [1, 1, 1]));
  await writeVolume(p("mismatch", "z1.tif"), makeVolume("uint8", [1, 8, 9], [1, 1, 1]));
  // Zarr v2 headers: a chunk shape of 0, a shape given as a string, a shape of 2×3e9×3e9
  const zarray = (name: string, shape: unknown, chunks: unknown) => {
    mkdirSync(p(name));
    writeFileSync(p(name, ".zarray"), JSON.stringify({ zarr_format: 2, shape, chunks, dtype: "<u2", compressor: null, fill_value: 0, order: "C", filters: null }));
  };
  zarray("chunk0.zarr", [4, 8, 8], [0, 8, 8]);
  zarray("strshape.zarr", "4,8,8", [4, 8, 8]);
  zarray("huge.zarr", [2, 3e9, 3e9], [1, 64, 64]);
  // NIfTI-2 headers (gzipped) declaring 2×3e9×3e9 voxels, and 2000³ float64 (60 GB)
  const huge = (shape: [number, number, number], dtype: "uint16" | "float64") => gzipSync(Buffer.concat([niftiHeader({ dtype, shape, spacingUm: [1, 1, 1] }, 2), Buffer.alloc(4 + 64)]));
  writeFileSync(p("huge.nii.gz"), huge([2, 3e9, 3e9], "uint16"));
  mkdirSync(p("big-ann", "images"), { recursive: true });
  mkdirSync(p("big-ann", "labels"));
  writeFileSync(p("big-ann", "images", "cfos_neuron_1.nii.gz"), huge([2000, 2000, 2000], "float64"));
  writeFileSync(p("big-ann", "labels", "cfos_neuron_1.nii.gz"), huge([2000, 2000, 2000], "float64"));
  // the user's folders and files that an output must not destroy
  mkdirSync(p("user-folder"));
  writeFileSync(p("user-folder", "thesis.txt"), "years of work");
  writeFileSync(p("existing.nii.gz"), "the user's file");
  writeFileSync(p("a-file"), "not a folder");
  mkdirSync(p("run-there"));
  writeFileSync(p("run-there", "checkpoint_latest.safetensors"), "the user's run");
  // a tiny dataset and an untrained model
  data = p("data");
  await synthDataset(data, { preset: "tiny", seed: 1, quiet: true, overrides: { unannotatedPerType: 1, annotatedPerType: 2, testPerType: 0, rawVolumes: 0 } });
  model = tinyModel(p("model.safetensors"));
});

interface Row {
  name: string;
  args: () => string[];
  code: number;
  /** The message must match (it names the culprit). */
  message: RegExp;
  /** Paths that must not exist afterwards (the output). */
  absent?: () => string[];
  /** Files that must still hold what they held (name → content). */
  intact?: () => Record<string, string>;
  todo?: string;
}

const usage = (name: string, args: () => string[], flag: string): Row => ({ name, args, code: 2, message: new RegExp(`--${flag}\\b`) });
const ft = (...extra: string[]) => () => ["finetune", "--data", data, "--out", p("run-x"), ...extra];
const pt = (...extra: string[]) => () => ["pretrain", "--data", data, "--method", "mae", "--out", p("run-y"), ...extra];
const pr = (...extra: string[]) => () => ["predict", "--model", model, "--in", p("in.nii.gz"), "--out", p("pred-x.nii.gz"), ...extra];
const cu = (...extra: string[]) => () => ["curate", "--in", p("in.nii.gz"), "--out", p("cur-x"), ...extra];

const ROWS: Row[] = [
  // flags: every number checked with its range before any work; exit 2 and the flag named
  { name: "unknown command", args: () => ["frobnicate"], code: 2, message: /unknown command 'frobnicate'/ },
  usage("unknown flag", () => ["synth", "--out", p("s"), "--bogus"], "bogus"),
  usage("missing required flag", () => ["synth"], "out"),
  usage("finetune --epochs -1", ft("--epochs", "-1"), "epochs"),
  usage("finetune --epochs 0", ft("--epochs", "0"), "epochs"),
  usage("finetune --steps-per-epoch 0", ft("--steps-per-epoch", "0"), "steps-per-epoch"),
  usage("finetune --patch abc", ft("--patch", "abc"), "patch"),
  usage("finetune --features 0", ft("--features", "0"), "features"),
  { ...usage("finetune --batch 0 (not PatchLoader's batchSize)", ft("--batch", "0"), "batch"), message: /^(?!.*PatchLoader).*--batch/s },
  usage("finetune --workers -1", ft("--workers", "-1"), "workers"),
  usage("finetune --lr 0", ft("--lr", "0"), "lr"),
  usage("finetune --fold 7", ft("--fold", "7"), "fold"),
  usage("finetune --nproc 0", ft("--nproc", "0"), "nproc"),
  usage("finetune --epochs 1.5", ft("--epochs", "1.5"), "epochs"),
  usage("pretrain --steps 0", pt("--steps", "0"), "steps"),
  usage("pretrain --batch 0", pt("--batch", "0"), "batch"),
  usage("pretrain --save-every 0", pt("--save-every", "0"), "save-every"),
  usage("predict --step 0", pr("--step", "0"), "step"),
  usage("predict --step 1.5", pr("--step", "1.5"), "step"),
  usage("predict --batch 0", pr("--batch", "0"), "batch"),
  usage("predict --threshold 2", pr("--threshold", "2"), "threshold"),
  usage("predict --max-memory-mb 0", pr("--max-memory-mb", "0"), "max-memory-mb"),
  usage("curate --workers -1", cu("--workers", "-1"), "workers"),
  usage("curate --patch 0", cu("--patch", "0"), "patch"),
  usage("curate --min-tissue 1.5", cu("--min-tissue", "1.5"), "min-tissue"),
  usage("serve --port 70000", () => ["serve", "--model", model, "--port", "70000"], "port"),
  usage("synth --raw -1", () => ["synth", "--out", p("s"), "--raw", "-1"], "raw"),
  usage("convert --slab-mb 0", () => ["convert", p("in.nii.gz"), p("c.nii.gz"), "--slab-mb", "0"], "slab-mb"),
  usage("evaluate --workers 0", () => ["evaluate", "--pred", dir, "--gt", dir, "--workers", "0"], "workers"),
  usage("experiment --seeds 0", () => ["experiment", "--data", data, "--out", p("e"), "--seeds", "0"], "seeds"),

  // outputs: never delete what lsmseg did not create
  { name: "convert into an existing folder", args: () => ["convert", p("in.nii.gz"), p("user-folder")], code: 2, message: /user-folder.*already exists.*--overwrite/, intact: () => ({ [p("user-folder", "thesis.txt")]: "years of work" }) },
  { name: "convert into a folder named x.tif, even with --overwrite", args: () => ["convert", p("in.nii.gz"), p("folder.tif"), "--overwrite"], code: 2, message: /folder\.tif: is a folder/, intact: () => ({ [p("folder.tif", "keep.txt")]: "mine" }) },
  { name: "convert over an existing file", args: () => ["convert", p("in.nii.gz"), p("existing.nii.gz")], code: 2, message: /existing\.nii\.gz: already exists/, intact: () => ({ [p("existing.nii.gz")]: "the user's file" }) },
  { name: "synth --out an existing folder", args: () => ["synth", "--out", p("user-folder")], code: 2, message: /user-folder: already exists/, intact: () => ({ [p("user-folder", "thesis.txt")]: "years of work" }) },
  { name: "curate --out an existing folder", args: cu("--out", p("user-folder")), code: 2, message: /user-folder: already exists/, intact: () => ({ [p("user-folder", "thesis.txt")]: "years of work" }) },
  { name: "predict --out an existing mask", args: () => ["predict", "--model", model, "--in", p("in.nii.gz"), "--out", p("existing.nii.gz")], code: 2, message: /existing\.nii\.gz: already exists/, intact: () => ({ [p("existing.nii.gz")]: "the user's file" }) },
  { name: "output under a missing folder in /proc (no hang)", args: () => ["convert", p("in.nii.gz"), "/proc/lsmseg-missing/a/out.nii.gz"], code: 1, message: /\/proc\/lsmseg-missing\/a.*cannot create the folder/ },
  { name: "output whose parent is a file", args: () => ["convert", p("in.nii.gz"), p("a-file", "out.nii.gz")], code: 1, message: /a-file is a file, not a folder/ },

  // readers: the file named, what is wrong in words
  { name: ".nii.gz without its last 4 bytes", args: () => ["convert", p("cut4.nii.gz"), p("o1.nii")], code: 1, message: /cut4\.nii\.gz: gzip data is truncated or corrupt/, absent: () => [p("o1.nii")] },
  { name: ".nii.gz without its last 8 bytes", args: () => ["convert", p("cut8.nii.gz"), p("o2.nii")], code: 1, message: /cut8\.nii\.gz: gzip data is truncated or corrupt/, absent: () => [p("o2.nii")] },
  { name: ".nii.gz with a wrong CRC-32", args: () => ["convert", p("crc.nii.gz"), p("o3.nii")], code: 1, message: /crc\.nii\.gz: gzip data is truncated or corrupt/, absent: () => [p("o3.nii")] },
  { name: ".mha whose ElementDataFile is ../outside", args: () => ["convert", p("mha", "dotdot.mha"), p("o4.nii")], code: 1, message: /dotdot\.mha: ElementDataFile '\.\.\/outside\/secret\.raw' leaves/, absent: () => [p("o4.nii")] },
  { name: ".mha whose ElementDataFile is absolute", args: () => ["convert", p("mha", "absolute.mha"), p("o5.nii")], code: 1, message: /absolute\.mha: ElementDataFile .* is an absolute path/, absent: () => [p("o5.nii")] },
  { name: ".mhd whose data file is a link out of its folder", args: () => ["convert", p("mha", "link.mhd"), p("o6.nii")], code: 1, message: /link\.mhd: ElementDataFile 'link\.raw' resolves to .*outside/, absent: () => [p("o6.nii")] },
  { name: "a folder named x.tif as input (no EISDIR)", args: () => ["convert", p("folder.tif"), p("o7.nii")], code: 1, message: /^(?!.*EISDIR).*folder\.tif: is a folder, not a TIFF file/s, absent: () => [p("o7.nii")] },
  { name: "a folder named x.mha as input (not 'file not found')", args: () => ["convert", p("folder.mha"), p("o8.nii")], code: 1, message: /folder\.mha: is a folder, not a MetaImage file/, absent: () => [p("o8.nii")] },
  { name: "a missing input", args: () => ["convert", p("nothing.nii.gz"), p("o9.nii")], code: 1, message: /nothing\.nii\.gz: file not found/, absent: () => [p("o9.nii")] },
  { name: "a plane folder with a missing plane", args: () => ["convert", p("gap"), p("o10.nii")], code: 1, message: /gap: missing slice between z1\.tif and z3\.tif/, absent: () => [p("o10.nii")] },
  { name: "a plane folder with a mismatched plane", args: () => ["convert", p("mismatch"), p("o11.nii")], code: 1, message: /mismatch\/z1\.tif/, absent: () => [p("o11.nii")] },

  // training and prediction
  { name: "finetune --patch 1000 on small data: refused with the numbers", args: ft("--patch", "1000", "--workers", "0"), code: 1, message: /patch 1000×1000×1000 with batch 2 .* needs at least \d+ GB .* this machine has \d+/ },
  { name: "finetune --out a run already there", args: () => ["finetune", "--data", data, "--out", p("run-there"), "--workers", "0"], code: 1, message: /run-there: a run is already there \(checkpoint_latest\.safetensors\); --resume continues it, or choose another --out/, intact: () => ({ [p("run-there", "checkpoint_latest.safetensors")]: "the user's run" }) },
  { name: "finetune --data missing", args: () => ["finetune", "--data", p("no-data"), "--out", p("run-z")], code: 1, message: /no-data/ },
  { name: "predict --model missing", args: () => ["predict", "--model", p("no-model"), "--in", p("in.nii.gz"), "--out", p("pred-y.nii.gz")], code: 1, message: /no-model/, absent: () => [p("pred-y.nii.gz")] },
  { name: "predict --in a header declaring 2×3e9×3e9 voxels", args: () => ["predict", "--model", model, "--in", p("huge.nii.gz"), "--out", p("pred-h.nii.gz")], code: 1, message: /huge\.nii\.gz: the header's shape 2×3000000000×3000000000 is not three sizes/, absent: () => [p("pred-h.nii.gz")] },
  { name: "convert a header declaring 2×3e9×3e9 voxels", args: () => ["convert", p("huge.nii.gz"), p("o12.nii")], code: 1, message: /huge\.nii\.gz: the header's shape/, absent: () => [p("o12.nii")] },
  { name: "finetune on a 2000³ float64 case (60 GB): refused with the numbers", args: () => ["finetune", "--data", p("big-ann"), "--out", p("run-big"), "--workers", "0", "--patch", "8", "--fold", "all"], code: 1, message: /cfos_neuron_1\.nii\.gz: the volume \(2000×2000×2000 float64\) needs 59\.6 GB in memory, but this machine has/ },
  { name: "predict --in a plane folder with a gap", args: () => ["predict", "--model", model, "--in", p("gap"), "--out", p("pred-gap")], code: 1, message: /gap: missing slice/, absent: () => [p("pred-gap")] },
  { name: "predict --in an .mha reading outside its folder", args: () => ["predict", "--model", model, "--in", p("mha", "dotdot.mha"), "--out", p("pred-z.nii.gz")], code: 1, message: /dotdot\.mha: ElementDataFile/, absent: () => [p("pred-z.nii.gz")] },

  // OME-Zarr headers (src/io/zarr.ts): the .zarray named, with its field
  { name: "Zarr chunk shape 0", args: () => ["convert", p("chunk0.zarr"), p("o13.nii")], code: 1, message: /chunk0\.zarr\/\.zarray: chunks must be an array of 3 positive integers/, absent: () => [p("o13.nii")] },
  { name: "Zarr shape given as a string", args: () => ["convert", p("strshape.zarr"), p("o14.nii")], code: 1, message: /strshape\.zarr\/\.zarray: shape must be an array/, absent: () => [p("o14.nii")] },
  { name: "a .zarray declaring 2×3e9×3e9", args: () => ["predict", "--model", model, "--in", p("huge.zarr"), "--out", p("pred-hz.nii.gz")], code: 1, message: /huge\.zarr: the header's shape 2×3000000000×3000000000/, absent: () => [p("pred-hz.nii.gz")] },
  { name: "an error names the .zarray, not the output", args: () => ["convert", p("strshape.zarr"), p("o15.zarr")], code: 1, message: /^(?!.*o15).*strshape\.zarr\/\.zarray/s, absent: () => [p("o15.zarr")] },
];

describe("bad inputs", () => {
  for (const row of ROWS) {
    test(row.name, { todo: row.todo }, async () => {
      if (row.todo) return;
      const before = row.intact?.() ?? {};
      const r = await cli(row.args());
      const said = r.stderr + r.stdout;
      assert.equal(r.code, row.code, `exit code ${r.code}, expected ${row.code}: ${said}`);
      assert.match(said, row.message);
      assert.doesNotMatch(said, /^\s+at .*\(.*:\d+:\d+\)$/m, "a stack trace reached the user");
      for (const [path, content] of Object.entries(before)) assert.equal(readFileSync(path, "utf8"), content, `${path} was changed`);
      for (const path of row.absent?.() ?? []) assert.ok(!existsSync(path), `${path} was written`);
      assert.deepEqual(leftovers(dir), [], "temporary files left behind");
    });
  }
});

test("the table has at least 40 rows that run", () => {
  assert.ok(ROWS.filter((r) => !r.todo).length >= 40, `${ROWS.length} rows`);
});

test("a region read of a gzip cut by its trailer is refused too", async () => {
  await assert.rejects(readRegion(p("cut8.nii.gz"), { start: [0, 0, 0], size: [1, 2, 2] }), /cut8\.nii\.gz: gzip data is truncated or corrupt/);
});

test("stale temporary files beside an output are removed, and the run says so; a live run's are kept", async () => {
  const stale = p(".lsmseg-tmp-999999999-1-fresh.nii.gz");
  const live = p(`.lsmseg-tmp-${process.pid}-77-fresh.nii.gz`);
  const other = p(".lsmseg-tmp-999999999-2-other.nii.gz");
  for (const f of [stale, live, other]) writeFileSync(f, "half a volume");
  const old = new Date(Date.now() - 7 * 3600 * 1000);
  utimesSync(other, old, old);
  const r = await cli(["convert", p("in.nii.gz"), p("fresh.nii.gz"), "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /removed .*\.lsmseg-tmp-999999999-1-fresh\.nii\.gz: a temporary file left by an interrupted run/);
  assert.ok(!existsSync(stale));
  assert.ok(existsSync(live), "a temporary file of a running process is not stale");
  assert.ok(existsSync(other), "another output's temporary file is not touched");
  rmSync(live);
  rmSync(other);
  // a run folder: a killed finetune's half checkpoint goes at the next run over it
  mkdirSync(p("run-stale"));
  writeFileSync(p("run-stale", ".lsmseg-tmp-999999999-3-checkpoint_latest.safetensors"), "half a checkpoint");
  const ft = await cli(["finetune", "--data", p("no-data"), "--out", p("run-stale")]);
  assert.match(ft.stderr, /removed .*run-stale\/\.lsmseg-tmp-999999999-3-checkpoint_latest\.safetensors/);
  assert.deepEqual(readdirSync(p("run-stale")), []);
});

test("convert --overwrite into a plane folder replaces lsmseg's planes and keeps the user's other files", async () => {
  const out = p("planes");
  assert.equal((await cli(["convert", p("in.nii.gz"), out, "--quiet"])).code, 0);
  writeFileSync(join(out, "notes.txt"), "mine");
  writeFileSync(join(out, "z9999.tif"), "stale plane"); // a plane of an older, deeper volume
  const again = await cli(["convert", p("in.nii.gz"), out, "--quiet"]);
  assert.equal(again.code, 2, "refused without --overwrite");
  assert.equal((await cli(["convert", p("in.nii.gz"), out, "--overwrite", "--quiet"])).code, 0);
  assert.deepEqual(readdirSync(out).sort(), ["notes.txt", "z0000.tif", "z0001.tif", "z0002.tif", "z0003.tif"]);
  assert.equal(readFileSync(join(out, "notes.txt"), "utf8"), "mine");
  // a TIFF lsmseg did not write would become a plane: refused even with --overwrite
  writeFileSync(join(out, "scan.tif"), "the user's tiff");
  const r = await cli(["convert", p("in.nii.gz"), out, "--overwrite"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /planes.*scan\.tif/);
  assert.ok(existsSync(join(out, "scan.tif")));
  assert.deepEqual(leftovers(dir), []);
});

test("synth --overwrite replaces only synth's outputs", async () => {
  const out = p("synth-out");
  mkdirSync(out);
  writeFileSync(join(out, "README.txt"), "mine");
  mkdirSync(join(out, "raw"));
  writeFileSync(join(out, "raw", "old.txt"), "synth's old output");
  const r = await cli(["synth", "--out", out, "--overwrite", "--quiet", "--unannotated", "1", "--annotated", "1", "--test", "0", "--raw", "0"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(out, "README.txt"), "utf8"), "mine");
  assert.ok(existsSync(join(out, "dataset.json")) && existsSync(join(out, "annotated")));
  assert.ok(!existsSync(join(out, "raw", "old.txt")), "synth's own raw/ was replaced");
  assert.deepEqual(leftovers(dir), []);
});

test("an unreadable input is 'permission denied', not 'file not found'", { skip: process.getuid?.() === 0 ? "root reads every file" : false }, async () => {
  const f = p("locked.nii.gz");
  await writeRamp(f);
  chmodSync(f, 0);
  const r = await cli(["convert", f, p("o-locked.nii")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /locked\.nii\.gz: permission denied/);
});

// serve: what only a process shows (it exits)
function exited(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = "";
  child.stdout!.on("data", (c: Buffer) => { output += String(c); });
  child.stderr!.on("data", (c: Buffer) => { output += String(c); });
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, output })));
}

test("serve exits with code 1 and says why when its port is in use", async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = await exited(startCli(["serve", "--model", model, "--input", dir, "--output", p("srv-out"), "--port", String(port)]));
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`));
  } finally {
    blocker.close();
  }
});

test("serve exits with code 1 when --host cannot be resolved", async () => {
  const r = await exited(startCli(["serve", "--model", model, "--input", dir, "--output", p("srv-out"), "--host", "no-such-host.invalid", "--port", "0"]));
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /cannot listen on no-such-host\.invalid:0: the host name cannot be resolved/);
});

test("serve stops on SIGTERM", async () => {
  const child = startCli(["serve", "--model", model, "--input", dir, "--output", p("srv-out"), "--port", "0"]);
  const done = exited(child);
  await new Promise<void>((resolve) => {
    const look = (c: Buffer) => { if (String(c).includes("listening on")) { child.stdout!.off("data", look); resolve(); } };
    child.stdout!.on("data", look);
  });
  child.kill("SIGTERM");
  const r = await done;
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /SIGTERM: stopping/);
});
