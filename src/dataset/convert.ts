// lsmseg convert-dataset: SELMA3D's layout to nnU-Net's raw layout and back, case for case, so that nnU-Net and
// lsmseg run on the same data and their predictions compare by case name. Volumes are written as .nii.gz
// (nnU-Net's default file_ending), copied when they already are, else streamed through convertVolume.
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { convertVolume } from "../io/convert.ts";
import { tempPathFor, writeFileAtomic } from "../util/atomic.ts";
import { type Layout, findDatasetJson, layoutOf } from "./layout.ts";
import { caseNameOf, channelOf, stemOf, volumeExtensionOf } from "./names.ts";

const ENDING = ".nii.gz";

interface Move { from: string; to: string }

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** The volumes of a folder as (case name, file), sorted; `nnunetImages` strips and checks the channel suffix. */
function volumesOf(dir: string, nnunetImages: boolean): Array<{ name: string; path: string }> {
  if (!isDir(dir)) return [];
  const out: Array<{ name: string; path: string }> = [];
  for (const f of readdirSync(dir).sort()) {
    const stem = stemOf(f);
    if (stem === null || f.startsWith(".")) continue;
    if (nnunetImages) {
      const ch = channelOf(stem);
      if (ch === null) throw new Error(`${join(dir, f)}: an nnU-Net image needs the channel suffix _0000`);
      if (ch > 0) throw new Error(`${join(dir, f)}: channel ${ch} of a multi-channel nnU-Net dataset; convert-dataset handles single-channel datasets (only _0000 files)`);
    }
    out.push({ name: caseNameOf(f, nnunetImages), path: join(dir, f) });
  }
  return out;
}

/** The files to write for `to`, from the folders of `inDir` in the other layout. */
function plan(inDir: string, from: Layout): { moves: Move[]; training: number } {
  const moves: Move[] = [];
  const add = (dir: string, nnunetImages: boolean, outDir: string, suffix: string) => {
    const list = volumesOf(dir, nnunetImages);
    for (const v of list) moves.push({ from: v.path, to: join(outDir, `${v.name}${suffix}${ENDING}`) });
    return list.length;
  };
  if (from === "selma3d") {
    const annotated = isDir(join(inDir, "annotated", "images")) ? join(inDir, "annotated") : inDir;
    if (!isDir(join(annotated, "images"))) throw new Error(`${inDir}: neither SELMA3D's annotated/images/ nor nnU-Net's imagesTr/`);
    const training = add(join(annotated, "images"), false, "imagesTr", "_0000");
    if (add(join(annotated, "labels"), false, "labelsTr", "") !== training) throw new Error(`${annotated}: images/ and labels/ hold different numbers of volumes`);
    add(join(inDir, "test", "images"), false, "imagesTs", "_0000");
    add(join(inDir, "test", "labels"), false, "labelsTs", "");
    return { moves, training };
  }
  const training = add(join(inDir, "imagesTr"), true, join("annotated", "images"), "");
  if (add(join(inDir, "labelsTr"), false, join("annotated", "labels"), "") !== training) throw new Error(`${inDir}: imagesTr/ and labelsTr/ hold different numbers of cases`);
  add(join(inDir, "imagesTs"), true, join("test", "images"), "");
  add(join(inDir, "labelsTs"), false, join("test", "labels"), "");
  return { moves, training };
}

export interface ConvertDatasetResult { cases: number; training: number; from: Layout; to: Layout; skipped: string[] }

/**
 * Writes the dataset `inDir` (SELMA3D or nnU-Net layout, found by its folders) into `outDir` in layout `to`,
 * with a dataset.json that keeps the source's keys (structures, roles, labels) and has nnU-Net's required ones.
 * Written under a temporary name and renamed; SELMA3D's unannotated/ has no nnU-Net counterpart and is skipped.
 */
export async function convertDataset(inDir: string, outDir: string, to: Layout, o: { quiet?: boolean } = {}): Promise<ConvertDatasetResult> {
  if (!isDir(inDir)) throw new Error(`${inDir}: no such folder`);
  const from = layoutOf(inDir);
  if (from === to) throw new Error(`${inDir}: already in ${to === "nnunet" ? "nnU-Net's" : "SELMA3D's"} layout`);
  if (existsSync(outDir)) throw new Error(`${outDir}: already exists (convert-dataset writes a new folder)`);
  const { moves, training } = plan(inDir, from);
  const source = findDatasetJson(inDir, { levels: 0 });
  const tmp = tempPathFor(outDir);
  try {
    for (const m of moves) {
      const dst = join(tmp, m.to);
      mkdirSync(join(dst, ".."), { recursive: true });
      if (volumeExtensionOf(m.from)?.toLowerCase() === ENDING) copyFileSync(m.from, dst);
      else await convertVolume(m.from, dst, { quiet: true });
      if (!o.quiet) console.error(`${m.from} → ${join(outDir, m.to)}`);
    }
    const json = {
      ...(source?.raw ?? {}),
      channel_names: source?.channelNames ?? { 0: "LSM" },
      labels: source?.labels ?? { background: 0, foreground: 1 },
      numTraining: training,
      file_ending: ENDING,
    };
    writeFileAtomic(join(tmp, "dataset.json"), Buffer.from(JSON.stringify(json, null, 2) + "\n"));
    renameSync(tmp, outDir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const skipped = from === "selma3d" && isDir(join(inDir, "unannotated")) ? [join(inDir, "unannotated")] : [];
  return { cases: moves.length, training, from, to, skipped };
}
