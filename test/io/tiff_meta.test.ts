// lsmseg's TIFF output carries an ImageJ hyperstack description: tifffile (as Fiji) reads its z-spacing, unit
// and x/y resolution, and lsmseg reads its own spacing back.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readVolume, writeVolume } from "../../src/io/index.ts";
import { pattern } from "./pattern.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-tiffmeta-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const python = "/usr/bin/python3";
const hasTifffile = spawnSync(python, ["-c", "import tifffile"]).status === 0;

test("lsmseg's TIFF keeps its spacing in ImageJ's metadata, read by tifffile and by lsmseg", async () => {
  const p = join(dir, "out.tif");
  const vol = pattern("uint16", [6, 7, 8], [2.5, 0.75, 0.325]);
  await writeVolume(p, vol);
  const back = await readVolume(p);
  assert.deepEqual(back.spacingUm.map((s) => +s.toPrecision(9)), [2.5, 0.75, 0.325]);
  if (!hasTifffile) return;
  const script = `
import sys, tifffile
t = tifffile.TiffFile(sys.argv[1]); m = t.imagej_metadata; p = t.pages[0]
x = p.tags["XResolution"].value; y = p.tags["YResolution"].value
print(m["spacing"], m["unit"], m["slices"], round(x[1] / x[0], 6), round(y[1] / y[0], 6), t.series[0].axes)`;
  const r = spawnSync(python, ["-c", script, p], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "2.5 micron 6 0.325 0.75 ZYX");
});
