// Dataset discovery in the challenge's layouts, clear errors for bad ones, and stratified k-fold splits.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { makeVolume, writeVolume } from "../../src/io/index.ts";
import { type Case, annotatedCases, foldCases, kFoldSplits, structureOfName, unannotatedCases } from "../../src/data/index.ts";

const root = mkdtempSync(join(tmpdir(), "lsmseg-data-dataset-"));
after(() => rmSync(root, { recursive: true, force: true }));

async function annotatedLayout(dir: string, names: string[], labelShape: [number, number, number] = [4, 5, 6]): Promise<void> {
  for (const n of names) {
    await writeVolume(join(dir, "annotated", "images", n), makeVolume("uint16", [4, 5, 6]));
    await writeVolume(join(dir, "annotated", "labels", n), makeVolume("uint8", labelShape));
  }
}

test("annotated layout: pairs by name, structure from the name, category from the known types or dataset.json", async () => {
  const dir = join(root, "ok");
  await annotatedLayout(dir, ["cell_nuclei_0002.nii.gz", "blood_vessel_0001.nii.gz", "mystery_7.mha"]);
  let cases = await annotatedCases(dir);
  assert.deepEqual(cases.map((c) => c.id), ["blood_vessel_0001", "cell_nuclei_0002", "mystery_7"]);
  assert.deepEqual(cases.map((c) => [c.structure, c.category, c.density]), [
    ["blood_vessel", "contiguous", "dense"], ["cell_nuclei", "isolated", "dense"], ["mystery", "unknown", "unknown"]]);
  assert.equal(cases[1].labelPath, join(dir, "annotated", "labels", "cell_nuclei_0002.nii.gz"));
  // the annotated/ folder itself works too, and dataset.json (beside it or above) describes unknown types
  writeFileSync(join(dir, "dataset.json"), JSON.stringify({ structures: { mystery: { category: "isolated", density: "sparse" } } }));
  cases = await annotatedCases(join(dir, "annotated"));
  assert.deepEqual([cases[2].category, cases[2].density], ["isolated", "sparse"]);
  assert.equal(structureOfName("AD_plaques_0005"), "AD_plaques");
});

test("annotated layout errors name the files", async () => {
  const missing = join(root, "missing");
  await annotatedLayout(missing, ["cell_nuclei_0001.nii.gz"]);
  await writeVolume(join(missing, "annotated", "images", "cell_nuclei_0002.nii.gz"), makeVolume("uint16", [4, 5, 6]));
  await assert.rejects(annotatedCases(missing), (e: Error) => e.message.includes("cell_nuclei_0002.nii.gz: no label") && e.message.includes(join(missing, "annotated", "labels")));
  const mismatch = join(root, "mismatch");
  await annotatedLayout(mismatch, ["cfos_neuron_0001.nii.gz"], [4, 5, 7]);
  await assert.rejects(annotatedCases(mismatch), /labels\/cfos_neuron_0001\.nii\.gz: shape 4×5×7 does not match image .*images\/cfos_neuron_0001\.nii\.gz 4×5×6/);
  await assert.rejects(annotatedCases(join(root, "nothing")), /no images\/ folder/);
  const empty = join(root, "empty");
  mkdirSync(join(empty, "images"), { recursive: true });
  mkdirSync(join(empty, "labels"), { recursive: true });
  await assert.rejects(annotatedCases(empty), /images: no volumes/);
});

test("unannotated layout: patchvolume files at any depth, structure from the folder", async () => {
  const dir = join(root, "un");
  const put = (rel: string) => writeVolume(join(dir, "unannotated", rel), makeVolume("uint16", [3, 3, 3]));
  await put("isolated_structures/cfos_neuron/patchvolume_10.nii.gz");
  await put("isolated_structures/cfos_neuron/patchvolume_9.nii.gz");
  await put("contiguous_structures/new_vessels/patchvolume_1.nii.gz");
  writeFileSync(join(dir, "unannotated", "notes.txt"), "not a volume");
  const cases = unannotatedCases(dir);
  assert.deepEqual(cases.map((c) => c.id), ["cfos_neuron/patchvolume_9", "cfos_neuron/patchvolume_10", "new_vessels/patchvolume_1"]);
  assert.deepEqual(cases.map((c) => c.category), ["isolated", "isolated", "contiguous"]);
  assert.equal(cases[0].labelPath, undefined);
  await put("patchvolume_3.nii.gz");
  assert.throws(() => unannotatedCases(dir), /patchvolume_3\.nii\.gz: not in a structure folder/);
  assert.throws(() => unannotatedCases(join(root, "ok")), /no patchvolume_<n> files/);
});

function fakeCases(counts: Record<string, number>): Case[] {
  return Object.entries(counts).flatMap(([s, n]) => Array.from({ length: n }, (_, i) => ({
    id: `${s}_${String(i).padStart(4, "0")}`, imagePath: `/x/${s}_${i}.nii.gz`, labelPath: `/y/${s}_${i}.nii.gz`, structure: s, category: "isolated", density: "dense",
  })));
}

test("k-fold: disjoint validation sets that cover every case, stratified, balanced, deterministic", () => {
  const cases = fakeCases({ cfos_neuron: 9, cell_nuclei: 9, AD_plaques: 20, blood_vessel: 16, peripheral_nerve: 16, axonalmarker: 12 });
  const folds = kFoldSplits(cases, { seed: 1 });
  assert.equal(folds.length, 5);
  const seen = new Map<string, number>();
  for (const f of folds) {
    for (const c of f.val) seen.set(c.id, (seen.get(c.id) ?? 0) + 1);
    assert.equal(f.train.length + f.val.length, cases.length);
    const val = new Set(f.val.map((c) => c.id));
    assert.ok(f.train.every((c) => !val.has(c.id)));
    // every type has ≥ 5 cases, so every fold validates on every type
    assert.deepEqual(new Set(f.val.map((c) => c.structure)).size, 6);
  }
  assert.equal(seen.size, cases.length);
  assert.ok([...seen.values()].every((n) => n === 1));
  const sizes = folds.map((f) => f.val.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, sizes.join());
  assert.deepEqual(kFoldSplits(cases, { seed: 1 }), folds);
  assert.notDeepEqual(kFoldSplits(cases, { seed: 2 }).map((f) => f.val.map((c) => c.id)), folds.map((f) => f.val.map((c) => c.id)));
  assert.deepEqual(foldCases(cases, 3, { seed: 1 }), folds[3]);
  assert.deepEqual(foldCases(cases, "all"), { train: cases, val: [] });
  assert.throws(() => foldCases(cases, 5), /--fold: expected 0…4 or "all", got 5/);
  assert.throws(() => kFoldSplits(fakeCases({ a: 3 })), /3 cases cannot be split into 5 folds/);
});
