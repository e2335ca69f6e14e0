// Weights from and to PyTorch, against fixtures/weights/make_weights.py (Debian's python3-torch 1.13, the
// module structure of dynamic_network_architectures written out): lsmseg's forward of an imported
// PlainConvUNet / ResidualEncoderUNet equals PyTorch's (fp32, 1e-4); import → export gives every tensor back
// bit for bit, in the network's key order (and PyTorch's own strict load agrees, when python3-torch is here);
// predict with the imported nnU-Net model gives PyTorch's mask; nnssl encoders initialise finetune; and what
// does not fit is refused, naming the file and the keys.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { normalize } from "../../src/data/normalize.ts";
import { readVolume } from "../../src/io/index.ts";
import { createHash } from "node:crypto";
import { RESENC_PRESETS, ResEncUNet, UNet, buildNetwork } from "../../src/nn/index.ts";
import { loadModel, networkFromCheckpoint, transferWeights } from "../../src/seg/model.ts";
import { predictFile } from "../../src/seg/predict.ts";
import * as T from "../../src/torch/index.ts";
import { PyDict } from "../../src/torch/pickle.ts";
import { PthWriter, readPth, stateDictOf } from "../../src/torch/pth.ts";
import { dnaKeys } from "../../src/weights/keymap.ts";
import { exportWeights, importWeights } from "../../src/weights/weights.ts";

T.setNumThreads(1);
const FIX = "fixtures/weights";
const dir = mkdtempSync(join(tmpdir(), "lsmseg-weights-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const python = "/usr/bin/python3";
const hasTorch = spawnSync(python, ["-c", "import torch"]).status === 0;
const PATCH = [8, 16, 16];
// a copy of the file's own bytes: readFileSync's Buffer may sit inside a larger ArrayBuffer (Node 24 does)
const f32 = (path: string) => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const SOURCES = { plain: join(FIX, "nnunet_plain"), resenc: join(FIX, "resenc_checkpoint_final.pth") } as const;
const CHECKPOINTS = { plain: join(FIX, "nnunet_plain/fold_0/checkpoint_final.pth"), resenc: SOURCES.resenc } as const;

/** Every tensor of the fixture checkpoint's network_weights, as bytes, in order. */
function fixtureTensors(arch: keyof typeof CHECKPOINTS): [string, Buffer, string, number[]][] {
  const p = readPth(CHECKPOINTS[arch]);
  return [...stateDictOf((p.root as PyDict).get("network_weights"), arch)].map(([k, ref]) => {
    const t = p.tensor(ref);
    const out: [string, Buffer, string, number[]] = [k, Buffer.from(t.bytes()), t.dtype, t.shape];
    t.dispose();
    return out;
  });
}

for (const arch of ["plain", "resenc"] as const) {
  test(`${arch}: the imported nnU-Net network's forward equals PyTorch's (fp32)`, (t) => {
    const run = join(dir, `fwd-${arch}`);
    importWeights(SOURCES[arch], "nnunet", run);
    const model = loadModel(run);
    assert.equal(model.net instanceof (arch === "plain" ? UNet : ResEncUNet), true);
    assert.deepEqual(model.plan.patchSize, PATCH);
    assert.equal(model.plan.normalization.scheme, "zscore");
    const x = T.tensor(f32(join(FIX, "input_normalized.f32")), [1, 1, ...PATCH]);
    const y = T.noGrad(() => model.net.forward(x)) as T.Tensor;
    const got = y.toArray(), want = Array.from(f32(join(FIX, `${arch}_logits.f32`)));
    assert.equal(got.length, want.length);
    const maxErr = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
    t.diagnostic(`${arch}: max |lsmseg − PyTorch| = ${maxErr.toExponential(2)} over ${got.length} logits`);
    assert.ok(maxErr < 1e-4, `max error ${maxErr}`);
    x.dispose();
    y.dispose();
    model.net.dispose();
  });

  test(`${arch}: import → export --format nnunet gives every tensor back bit for bit, in PyTorch's key order`, () => {
    const run = join(dir, `rt-${arch}`);
    const report = importWeights(SOURCES[arch], "nnunet", run);
    assert.deepEqual([report.unmapped, report.untouched], [[], []]);
    const out = join(dir, `rt-${arch}.pth`);
    exportWeights(run, "nnunet", out);
    const back = readPth(out);
    const root = back.root as PyDict;
    // besides the weights, what nnUNetPredictor reads from a fold's checkpoint
    assert.deepEqual([...root.map.keys()], ["network_weights", "trainer_name", "init_args", "inference_allowed_mirroring_axes"]);
    assert.equal(root.get("trainer_name"), "nnUNetTrainer");
    assert.equal((root.get("init_args") as PyDict).get("configuration"), "3d_fullres");
    const sd = stateDictOf(root.get("network_weights"), "export");
    const want = fixtureTensors(arch);
    assert.deepEqual([...sd.keys()], want.map(([k]) => k));
    for (const [k, bytes, dtype, shape] of want) {
      const t = back.tensor(sd.get(k)!);
      assert.deepEqual([t.dtype, t.shape], [dtype, shape], k);
      assert.ok(Buffer.from(t.bytes()).equals(bytes), `${k} differs`);
      t.dispose();
    }
    // the .conv/.all_modules.0 and decoder.encoder.* aliases share one storage, as in nnU-Net's own files
    const first = [...sd.keys()][0]; // the first conv's weight
    assert.match(first, /\.conv\.weight$/);
    for (const alias of [first.replace(/\.conv\.weight$/, ".all_modules.0.weight"), `decoder.${first}`]) assert.equal(sd.get(alias)!.storage.key, sd.get(first)!.storage.key, alias);
    const sft = join(dir, `rt-${arch}.safetensors`);
    exportWeights(run, "nnunet", sft);
    const st = T.loadSafetensors(sft);
    assert.deepEqual([...st.tensors.keys()], want.map(([k]) => k));
    for (const [k, bytes] of want) assert.ok(Buffer.from(st.tensors.get(k)!.bytes()).equals(bytes), `${k} differs in the safetensors export`);
    for (const t of st.tensors.values()) t.dispose();
  });

  test(`${arch}: PyTorch loads the export with weights_only=True and load_state_dict(strict=True)`, { skip: hasTorch ? false : "python3-torch is not installed" }, () => {
    const run = join(dir, `py-${arch}`);
    importWeights(SOURCES[arch], "nnunet", run);
    const out = join(dir, `py-${arch}.pth`);
    exportWeights(run, "nnunet", out);
    const r = spawnSync(python, [join(FIX, "make_weights.py"), "--verify", out, arch], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`verified ${fixtureTensors(arch).length} tensors`));
  });
}

test("predict with the imported nnU-Net model gives PyTorch's mask (fp32, no mirroring)", async () => {
  const run = join(dir, "predict");
  importWeights(SOURCES.plain, "nnunet", run);
  const model = loadModel(run);
  const out = join(dir, "mask.nii.gz");
  await predictFile(model, join(FIX, "input.nii.gz"), out, { mirror: false, precision: "fp32" });
  const mask = (await readVolume(out)).data;
  const want = readFileSync(join(FIX, "plain_mask.u8"));
  let differ = 0, fg = 0;
  for (let i = 0; i < want.length; i++) {
    if (mask[i] !== want[i]) differ++;
    fg += want[i];
  }
  assert.ok(fg > 100 && fg < want.length - 100, "the fixture mask should have both classes");
  assert.equal(differ, 0);
  model.net.dispose();
});

test("nnssl checkpoints (the whole network, or the encoder alone) initialise a fine-tuning network's encoder", () => {
  const refs = readPth(join(FIX, "nnssl_encoder_only.pth"));
  const src = stateDictOf((refs.root as PyDict).get("network_weights"), "nnssl");
  for (const [name, file] of [["full", "nnssl_resenc.pth"], ["encoder", "nnssl_encoder_only.pth"]] as const) {
    const run = join(dir, `ssl-${name}`);
    const r = importWeights(join(FIX, file), "nnssl", run);
    assert.equal(r.untouched.length > 0, name === "encoder");
    assert.throws(() => loadModel(run), /carries no plan/);
    const cfg = networkFromCheckpoint(run, 2, true)!;
    assert.equal(cfg.arch, "resenc");
    const net = buildNetwork(cfg);
    const tr = transferWeights(net, run);
    assert.equal(tr.transferred.length, net.keyGroups().encoder.length);
    const sd = net.stateDict();
    // spot checks against the source: the stem conv and a strided block's pooled-only shortcut stage
    for (const [ls, key] of [["encoder.stem.0.weight", "stem.convs.0.conv.weight"], ["encoder.stages.3.0.conv2.weight", "stages.3.blocks.0.conv2.conv.weight"], ["encoder.stages.1.0.skip.2.weight", "stages.1.blocks.0.skip.1.norm.weight"]]) {
      const t = refs.tensor(src.get(key)!);
      assert.ok(Buffer.from(sd.get(ls)!.bytes()).equals(Buffer.from(t.bytes())), `${name}: ${ls}`);
      t.dispose();
    }
    net.dispose();
  }
});

test("the key maps cover every lsmseg tensor once (U-Net with deep supervision, residual encoders with either shortcut)", () => {
  const cfgs = [
    { arch: "unet", features: [4, 8, 16], strides: [1, 2, 2], kernelSizes: [3, 3, 3], convsPerStage: 3, convsPerStageDecoder: 1, deepSupervision: true },
    { arch: "resenc", features: [4, 8, 8], strides: [1, 2, 2], kernelSizes: [3, 3, 3], blocksPerStage: [1, 2, 1], projectStridedShortcut: false, deepSupervision: true },
  ] as const;
  for (const c of cfgs) {
    const net = buildNetwork(c as never);
    const entries = dnaKeys(net.config as never, "test");
    const primary = entries.filter((e) => !e.alias).map((e) => e.lsmseg).sort();
    assert.deepEqual(primary, [...net.stateDict().keys()].sort(), c.arch);
    assert.equal(new Set(entries.map((e) => e.target)).size, entries.length);
    net.dispose();
  }
  // lsmseg's default residual encoder projects a strided 8 → 8 shortcut: nnU-Net has no key for that conv
  const legacy = buildNetwork({ ...cfgs[1], projectStridedShortcut: undefined } as never);
  assert.throws(() => dnaKeys(legacy.config as never, "test"), /stage 2: lsmseg's shortcut projects a strided block of 8 → 8 channels/);
  legacy.dispose();
});

test("import refuses what does not fit: other shapes, pickled code, keys without a place, an existing checkpoint", () => {
  // plans saying 3 channels in the first stage, weights with 2
  const folder = join(dir, "wrong-plans");
  cpSync(SOURCES.plain, folder, { recursive: true });
  const plans = JSON.parse(readFileSync(join(folder, "plans.json"), "utf8"));
  plans.configurations["3d_fullres"].architecture.arch_kwargs.features_per_stage[0] = 3;
  writeFileSync(join(folder, "plans.json"), JSON.stringify(plans));
  assert.throws(() => importWeights(folder, "nnunet", join(dir, "o1")), /checkpoint_final\.pth: shapes do not match the network the plans describe: encoder\.stages\.0\.0\.convs\.0\.conv\.weight is \[2,1,1,3,3\], lsmseg's enc\.0\.0\.weight is \[3,1,1,3,3\]/);
  plans.configurations["3d_fullres"].architecture.arch_kwargs.features_per_stage[0] = 2;
  plans.configurations["3d_fullres"].normalization_schemes = ["CTNormalization"];
  writeFileSync(join(folder, "plans.json"), JSON.stringify(plans));
  assert.throws(() => importWeights(folder, "nnunet", join(dir, "o2")), /normalization_schemes \[CTNormalization\]; lsmseg reproduces ZScoreNormalization only/);
  mkdirSync(join(dir, "evil/fold_0"), { recursive: true });
  for (const f of ["plans.json", "dataset.json"]) copyFileSync(join(SOURCES.plain, f), join(dir, "evil", f));
  copyFileSync(join(FIX, "malicious_os_system.pth"), join(dir, "evil/fold_0/checkpoint_final.pth"));
  assert.throws(() => importWeights(join(dir, "evil"), "nnunet", join(dir, "o3")), /checkpoint_final\.pth: refuses to unpickle posix\.system \(only state-dict classes are allowed\)/);
  // a ResEnc checkpoint under plans of a plain U-Net: its keys have no place
  assert.throws(() => importWeights(SOURCES.resenc, "nnunet", join(dir, "o4"), { plansFile: join(SOURCES.plain, "plans.json"), datasetFile: join(SOURCES.plain, "dataset.json") }), /resenc_checkpoint_final\.pth: \d+ tensors have no place in the unet network the plans describe: encoder\.stem\.convs\.0\.conv\.weight/);
  importWeights(SOURCES.plain, "nnunet", join(dir, "o5"));
  assert.throws(() => importWeights(SOURCES.plain, "nnunet", join(dir, "o5")), /already holds checkpoint_final\.safetensors/);
});

test("--format pytorch: lsmseg's own names round trip; a key map renames another model's keys", () => {
  const run = join(dir, "pt-src");
  importWeights(SOURCES.plain, "nnunet", run);
  const out = join(dir, "plain_lsmseg.pth");
  exportWeights(run, "pytorch", out);
  const again = join(dir, "pt-again");
  importWeights(out, "pytorch", again);
  const a = loadModel(run), b = loadModel(again);
  assert.deepEqual(b.plan, a.plan);
  const sa = a.net.stateDict(), sb = b.net.stateDict();
  for (const [k, t] of sa) assert.ok(Buffer.from(t.bytes()).equals(Buffer.from(sb.get(k)!.bytes())), k);
  // the same tensors under "backbone.<key>" in {"state_dict": ...}, renamed by a rule
  const w = new PthWriter();
  const prefixed = join(dir, "prefixed.pth");
  w.save(prefixed, new PyDict(false, [["state_dict", w.stateDict([...sa].map(([k, t]) => [`backbone.${k}`, t]))]]));
  const km = join(dir, "keymap.json");
  writeFileSync(km, JSON.stringify({ plan: a.plan, stateDictKey: "state_dict", rules: [["^backbone\\.", ""]] }));
  const third = join(dir, "pt-keymap");
  importWeights(prefixed, "pytorch", third, { keyMapFile: km });
  const c = loadModel(third);
  for (const [k, t] of sa) assert.ok(Buffer.from(t.bytes()).equals(Buffer.from(c.net.stateDict().get(k)!.bytes())), k);
  writeFileSync(km, JSON.stringify({ plan: a.plan, stateDictKey: "state_dict" }));
  assert.throws(() => importWeights(prefixed, "pytorch", join(dir, "pt-nomap"), { keyMapFile: km }), /prefixed\.pth: 68 tensors have no place in the unet network the plans describe: backbone\.enc\.0\.0\.weight/);
  for (const m of [a, b, c]) m.net.dispose();
});

test("the zscore scheme of imported models clips nothing, also when the percentiles come from a subsample", () => {
  const n = 200_001; // more voxels than the percentile subsample: its min/max would clip
  const data = Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) + (i === 5 ? 1e6 : 0));
  let mean = 0;
  for (const v of data) mean += v;
  mean /= n;
  let s2 = 0;
  for (const v of data) s2 += (v - mean) ** 2;
  const std = Math.sqrt(s2 / n);
  const got = normalize(data, { percentiles: [0, 100] });
  for (const i of [0, 5, 1234, n - 1]) assert.ok(Math.abs(got[i] - (data[i] - mean) / std) < 1e-4, `voxel ${i}`);
});

test("the ResEnc-L preset's key map gives dynamic_network_architectures' ResidualEncoderUNet keys and shapes (checksums from the real library)", () => {
  // fixtures/weights/dna_cross_check.json: make_weights.py --cross-check run against the real package's source
  const ref = JSON.parse(readFileSync(join(FIX, "dna_cross_check.json"), "utf8")).resenc_l;
  const cfg = { ...RESENC_PRESETS.L.network, inChannels: 1, numClasses: 2, deepSupervision: true };
  const entries = dnaKeys(cfg as never, "ResEnc-L");
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");
  assert.equal(entries.length, ref.keys);
  assert.equal(sha(entries.map((e) => `${e.target}\n`).join("")), ref.sha256_key_lines);
  const net = buildNetwork(cfg as never); // 102 M parameters: about 400 MB for a moment
  const sd = net.stateDict();
  assert.equal(sha(entries.map((e) => `${e.target} [${sd.get(e.lsmseg)!.shape.join(", ")}]\n`).join("")), ref.sha256_key_shape_lines);
  net.dispose();
});

test("the commands: import-weights prints the report and refuses pickled code with one line; export-weights writes the file", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/lsmseg.js", ...args], { encoding: "utf8" });
  const run = join(dir, "cli-run");
  let r = cli("import-weights", SOURCES.resenc, "--format", "nnunet", "--out", run);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /resenc, features 2\/4\/8\/8, 2 classes[\s\S]*82 tensors loaded, 186 alias keys checked equal, 0 left at initialisation, 0 source keys unmapped/);
  r = cli("export-weights", run, "--format", "nnunet", "--out", join(dir, "cli.safetensors"));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /268 tensors/);
  r = cli("import-weights", join(FIX, "malicious_custom_class.pth"), "--format", "pytorch", "--arch", "unet", "--out", join(dir, "cli-evil"));
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr.trim(), "lsmseg import-weights: malicious_custom_class.pth: refuses to unpickle __main__.Payload (only state-dict classes are allowed)");
});
