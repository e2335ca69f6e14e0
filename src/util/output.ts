// Output safety: lsmseg never deletes what it did not create. An existing output is refused unless the user
// passes --overwrite; even then only lsmseg's own outputs are replaced (a folder's other files stay). Folders
// are created one level at a time after checking the nearest existing parent (Node's recursive mkdir spins
// forever on a missing folder inside /proc), and temporary files left by a killed run are removed by name
// and age the next time an output goes to the same place.
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { TEMP_PREFIX, makeDirs, tempPathFor } from "./atomic.ts";

export { makeDirs };

/** A temporary file or folder older than this is stale whoever made it (another machine's pid means nothing here). */
const STALE_TEMP_MS = 6 * 3600 * 1000;

/** An output that exists and may not be replaced: a usage error (exit 2), nothing was written. */
export class OutputExistsError extends Error {
  readonly exitCode = 2;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporary files and folders that earlier runs left beside `path` (`.lsmseg-tmp-<pid>-<n>-<name>`):
 * those whose process is gone, or that are older than STALE_TEMP_MS. Returns the paths removed.
 */
function removeStaleTemps(path: string, log?: (line: string) => void): string[] {
  const name = basename(resolve(path));
  return removeStale(dirname(resolve(path)), (target) => target === name, log);
}

/** removeStaleTemps for every output inside the folder `dir` (a run folder: checkpoints, logs). */
export function removeStaleTempsIn(dir: string, log?: (line: string) => void): string[] {
  return removeStale(resolve(dir), () => true, log);
}

function removeStale(dir: string, target: (name: string) => boolean, log: (line: string) => void = (l) => console.error(l)): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const pattern = /^\.lsmseg-tmp-(\d+)-\d+-(.*)$/;
  for (const e of entries) {
    const m = pattern.exec(e);
    if (!m || !target(m[2]) || !e.startsWith(TEMP_PREFIX)) continue;
    const p = join(dir, e);
    let ageMs: number;
    try {
      ageMs = Date.now() - lstatSync(p).mtimeMs;
    } catch {
      continue;
    }
    const pid = Number(m[1]);
    if (pid === process.pid || (processAlive(pid) && ageMs < STALE_TEMP_MS)) continue;
    rmSync(p, { recursive: true, force: true });
    removed.push(p);
    log(`removed ${p}: a temporary file left by an interrupted run`);
  }
  return removed;
}

export interface OutputCheck {
  /** The output is a file (a volume, a checkpoint) or a folder (a dataset, a plane folder, masks). */
  kind: "file" | "folder";
  /** Replace an existing output (only lsmseg's own outputs in a folder). */
  overwrite?: boolean;
  /** For a folder: the entries lsmseg writes there; with `exclusive`, any other entry refuses even --overwrite. */
  owns?: (name: string) => boolean;
  exclusive?: boolean;
  /** Where the flag is, for the message (default "--overwrite"). */
  flag?: string;
  log?: (line: string) => void;
}

/**
 * Checks an output path before any work starts: removes stale temporary files beside it, creates its parent,
 * and refuses an existing output unless `overwrite` (a folder where a file goes, or a file where a folder goes,
 * is refused always).
 */
export function prepareOutput(path: string, o: OutputCheck): void {
  const flag = o.flag ?? "--overwrite";
  removeStaleTemps(path, o.log);
  makeDirs(dirname(resolve(path)));
  let st;
  try {
    st = statSync(path);
  } catch {
    return;
  }
  if (o.kind === "file" && st.isDirectory()) throw new OutputExistsError(`${path}: is a folder, but the output is a file; choose another name (lsmseg never replaces a folder with a file)`);
  if (o.kind === "folder" && !st.isDirectory()) throw new OutputExistsError(`${path}: is a file, but the output is a folder; choose another name`);
  if (o.kind === "folder" && readdirSync(path).length === 0) return;
  if (!o.overwrite) throw new OutputExistsError(`${path}: already exists; pass ${flag} to replace ${o.kind === "folder" ? "lsmseg's outputs in it" : "it"}, or choose another name`);
  if (o.kind === "folder" && o.exclusive && o.owns) {
    const foreign = readdirSync(path).filter((n) => !o.owns!(n) && !n.startsWith(TEMP_PREFIX));
    if (foreign.length) {
      throw new OutputExistsError(`${path}: holds ${foreign.length} file${foreign.length === 1 ? "" : "s"} lsmseg did not write (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}); ${flag} replaces only lsmseg's outputs, so move them or choose another name`);
    }
  }
}

/**
 * Moves the entries of the finished folder `tmpDir` into `outDir`: renamed into place when `outDir` does not
 * exist; else `outDir`'s own entries (`owns`) are replaced by the new ones and every other entry is kept.
 */
export function swapFolderIn(tmpDir: string, outDir: string, owns: (name: string) => boolean): void {
  if (!existsSync(outDir)) {
    renameSync(tmpDir, outDir);
    return;
  }
  if (!statSync(outDir).isDirectory()) throw new OutputExistsError(`${outDir}: is a file, but the output is a folder`);
  const aside = tempPathFor(outDir);
  mkdirSync(aside);
  for (const name of readdirSync(outDir)) if (owns(name)) renameSync(join(outDir, name), join(aside, name));
  for (const name of readdirSync(tmpDir)) renameSync(join(tmpDir, name), join(outDir, name));
  rmSync(tmpDir, { recursive: true, force: true });
  rmSync(aside, { recursive: true, force: true });
}
