// The fingerprint of a synthetic dataset: counts, categories and per-case statistics that agree with the files.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fingerprint } from "../../src/eval/fingerprint.ts";
import { synthDataset } from "../../src/synth/index.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-fp-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("fingerprint of a small synthetic dataset", async () => {
  const out = join(dir, "ds");
  const json = await synthDataset(out, { preset: "tiny", seed: 3, quiet: true, overrides: { annotatedPerType: 1, testPerType: 1, rawVolumes: 0, annotatedShape: [24, 32, 32] } });
  const fp = await fingerprint(out);
  assert.equal(Object.values(fp.counts.unannotated).reduce((a, b) => a + b, 0), json.splits.unannotated.length);
  assert.equal(fp.counts.test.microglia, 1);
  assert.equal(fp.counts.annotated.microglia, undefined);
  assert.equal(fp.categories["isolated dense"].test, 3);
  assert.equal(fp.cases.length, json.splits.annotated.length + json.splits.test.length);
  assert.deepEqual(fp.shapes, { "32×32×32": json.splits.unannotated.length, "24×32×32": fp.cases.length });
  assert.ok(fp.intensity.foreground!.p50 > fp.intensity.background!.p50);
  for (const c of fp.cases) {
    assert.ok(c.foregroundFraction > 0 && c.foregroundFraction < 0.5, `${c.image}: ${c.foregroundFraction}`);
    assert.ok(c.components >= 1 && c.skeletonVoxels >= 1);
  }
});
