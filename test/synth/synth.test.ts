// The synthetic dataset: layout and names as in the challenge, byte-identical for a seed, and the statistics
// that make each category what it is.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";
import { readVolume } from "../../src/io/index.ts";
import { labelComponents } from "../../src/eval/components.ts";
import { skeletonize3d, skeletonLength } from "../../src/eval/skeleton.ts";
import { STRUCTURES, synthDataset, type DatasetJson } from "../../src/synth/index.ts";

const root = mkdtempSync(join(tmpdir(), "lsmseg-synth-"));
const a = join(root, "a"), b = join(root, "b");
let json: DatasetJson;
before(async () => {
  json = await synthDataset(a, { preset: "tiny", seed: 7, quiet: true });
});
after(() => rmSync(root, { recursive: true, force: true }));

function files(dir: string): string[] {
  const out: string[] = [];
  (function walk(d: string) {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p); else out.push(relative(dir, p));
    }
  })(dir);
  return out;
}

test("the same seed gives byte-identical files; another seed does not", async () => {
  await synthDataset(b, { preset: "tiny", seed: 7, quiet: true });
  const fa = files(a), fb = files(b);
  assert.deepEqual(fa, fb);
  for (const f of fa) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between two runs`);
  rmSync(b, { recursive: true });
  await synthDataset(b, { preset: "tiny", seed: 8, quiet: true, overrides: { unannotatedPerType: 0, testPerType: 0, rawVolumes: 0 } });
  const f0 = json.splits.annotated[0].image!;
  assert.ok(!readFileSync(join(a, f0)).equals(readFileSync(join(b, f0))), "seed 8 gave the same image as seed 7");
});

test("challenge layout and names", () => {
  const all = files(a);
  const prefixes = ["axonalmarker", "blood_vessel", "gutnerve", "lymphatic_vessel", "peripheral_nerve", "AD_plaques", "cell_nuclei", "cfos_neuron", "microglia", "protein"];
  for (const f of all.filter((f) => f.startsWith("unannotated/"))) {
    assert.match(f, /^unannotated\/(isolated|contiguous)_structures\/[A-Za-z0-9_]+\/patchvolume_\d+\.nii\.gz$/);
  }
  for (const f of all.filter((f) => f.startsWith("annotated/"))) assert.match(f, /^annotated\/(images|labels)\/[A-Za-z_]+_\d+\.nii\.gz$/);
  for (const f of all.filter((f) => f.startsWith("test/"))) assert.match(f, /^test\/(images|labels)\/[A-Za-z_]+_\d+\.mha$/);
  const testPrefixes = new Set(all.filter((f) => f.startsWith("test/images/")).map((f) => f.slice(12).replace(/_\d+\.mha$/, "")));
  assert.deepEqual([...testPrefixes].sort(), [...prefixes].sort(), "every challenge prefix is in test/");
  assert.ok(all.some((f) => /^raw\/[^/]+\/z0000\.tif$/.test(f)), "a raw volume as a folder of z-plane TIFFs");
  assert.ok(all.some((f) => /^raw\/[^/]+\.ome\.zarr\/\.zattrs$/.test(f)), "a raw volume as OME-Zarr");
  for (const e of json.splits.annotated) assert.ok(all.includes(e.image!) && all.includes(e.label!));
  assert.equal(Object.keys(json.structures).length, STRUCTURES.length);
  assert.deepEqual(json.structures.microglia, { ...json.structures.microglia, category: "isolated", density: "dense", role: "heldOut", splits: ["test"] });
  assert.equal(json.structures.gutnerve.category + " " + json.structures.gutnerve.density, "contiguous sparse");
});

test("held-out types appear only in test/, unannotated-only types never in test/", () => {
  const heldOut = STRUCTURES.filter((t) => t.role === "heldOut").map((t) => t.name);
  assert.deepEqual(heldOut.sort(), ["gutnerve", "lymphatic_vessel", "microglia", "protein"]);
  for (const f of files(a)) {
    const inTest = f.startsWith("test/");
    for (const t of heldOut) if (f.includes(`/${t}`) || f.includes(`${t}_`)) assert.ok(inTest, `${f}: held-out type outside test/`);
  }
  const unannotatedOnly = STRUCTURES.filter((t) => t.role === "unannotatedOnly").map((t) => t.name);
  assert.ok(unannotatedOnly.length >= 4);
  for (const e of [...json.splits.test, ...json.splits.annotated]) assert.ok(!unannotatedOnly.includes(e.type));
});

test("images are uint16 LSM-like, labels binary uint8 of the same shape", async () => {
  const e = json.splits.test[0];
  const img = await readVolume(join(a, e.image!)), lab = await readVolume(join(a, e.label!));
  assert.equal(img.dtype, "uint16");
  assert.equal(lab.dtype, "uint8");
  assert.deepEqual(img.shape, lab.shape);
  let fg = 0, bg = 0, nf = 0, nb = 0;
  for (let i = 0; i < img.data.length; i++) {
    assert.ok(lab.data[i] === 0 || lab.data[i] === 1);
    if (lab.data[i]) { fg += img.data[i]; nf++; } else { bg += img.data[i]; nb++; }
  }
  assert.ok(fg / nf > (bg / nb) * 1.2, `foreground mean ${fg / nf} is not brighter than background ${bg / nb}`);
});

interface Stats { type: string; category: string; density: string; fg: number; components: number; largest: number; skeleton: number }

test("category statistics: isolated = many small components, contiguous = few long ones, dense > sparse", async () => {
  const stats: Stats[] = [];
  for (const e of [...json.splits.annotated, ...json.splits.test]) {
    const lab = await readVolume(join(a, e.label!));
    let fg = 0;
    for (const v of lab.data) fg += v;
    const c = labelComponents(lab.data, lab.shape);
    const s = json.structures[e.type];
    stats.push({
      type: e.type, category: s.category, density: s.density, fg: fg / lab.data.length, components: c.count,
      largest: Math.max(...Array.from(c.sizes.subarray(1))) / fg, skeleton: skeletonLength(skeletonize3d(lab.data, lab.shape)),
    });
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const side = json.generator.options.annotatedShape[2];
  const iso = stats.filter((s) => s.category === "isolated"), con = stats.filter((s) => s.category === "contiguous");
  for (const s of iso) assert.ok(s.components >= 2, `${s.type}: ${s.components} components`);
  for (const s of con) {
    assert.ok(s.largest >= 0.3, `${s.type}: the largest component holds only ${(s.largest * 100).toFixed(0)}% of the foreground`);
    assert.ok(s.skeleton >= side / 2, `${s.type}: skeleton of ${s.skeleton} voxels in a ${side}-voxel patch`);
  }
  assert.ok(mean(iso.map((s) => s.components)) > 5 * mean(con.map((s) => s.components)), "isolated types should have many more components");
  assert.ok(mean(con.map((s) => s.skeleton / s.components)) > 3 * mean(iso.map((s) => s.skeleton / s.components)), "contiguous components should have longer skeletons");
  for (const category of ["isolated", "contiguous"]) {
    const byType = (density: string) => {
      const types = new Set(stats.filter((s) => s.category === category && s.density === density).map((s) => s.type));
      return [...types].map((t) => ({ t, fg: mean(stats.filter((s) => s.type === t).map((s) => s.fg)) }));
    };
    const dense = byType("dense"), sparse = byType("sparse");
    const minDense = dense.reduce((m, x) => (x.fg < m.fg ? x : m)), maxSparse = sparse.reduce((m, x) => (x.fg > m.fg ? x : m));
    assert.ok(minDense.fg > maxSparse.fg, `${category}: dense ${minDense.t} (${minDense.fg.toFixed(4)}) should exceed sparse ${maxSparse.t} (${maxSparse.fg.toFixed(4)})`);
  }
});
