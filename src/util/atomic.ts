// Outputs are written to a temporary name beside the target and renamed into place, so a crash or a
// kill never leaves half a file under the final name (rename is atomic within one file system).
// Temporary names are recognisable (`.lsmseg-tmp-<pid>-<n>-<name>`, hidden, the target's name last) so that a
// later run over the same output can remove what a killed one left (src/util/output.ts).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

export const TEMP_PREFIX = ".lsmseg-tmp-";

let counter = 0;

/** A temporary path beside `path`, unique within this process: `<dir>/.lsmseg-tmp-<pid>-<n>-<name>`. */
export function tempPathFor(path: string): string {
  counter += 1;
  const trimmed = path.replace(/\/+$/, "");
  return join(dirname(trimmed), `${TEMP_PREFIX}${process.pid}-${counter}-${basename(trimmed)}`);
}

/** `dir` and its missing parents, one level at a time; an error names the path and the parent that is in the way. */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let p = resolve(dir);
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") throw new Error(`${dir}: cannot create the folder: ${p} cannot be read (${code})`);
      missing.push(p);
      const up = dirname(p);
      if (up === p) throw new Error(`${dir}: cannot create the folder: no part of the path exists`);
      p = up;
      continue;
    }
    if (!st.isDirectory()) throw new Error(`${dir}: cannot create the folder: ${p} is a file, not a folder`);
    break;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" && statSync(m).isDirectory()) continue; // made meanwhile by another rank
      throw new Error(`${dir}: cannot create the folder ${m} (${code === "ENOENT" ? "its parent does not accept new folders" : code})`);
    }
  }
}

/** Refuses to replace a folder with a file: rename would fail with a bare EISDIR, and rm would delete the folder. */
export function refuseFolder(path: string): void {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    return;
  }
  if (dir) throw new Error(`${path}: is a folder, but the output is a file; choose another name (lsmseg never replaces a folder with a file)`);
}

/** Writes `chunks` to `path` atomically (temporary file, fsync, rename). */
export function writeFileAtomic(path: string, ...chunks: Uint8Array[]): void {
  makeDirs(dirname(path));
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, "w");
  try {
    try {
      for (const chunk of chunks) {
        let offset = 0;
        while (offset < chunk.byteLength) offset += writeSync(fd, chunk, offset, chunk.byteLength - offset);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    refuseFolder(path);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Runs `write(tmpPath)` and renames the result to `path` when it succeeds; removes the temporary
 * file or folder when it throws. For writers that produce a file or a directory tree themselves.
 */
export async function withAtomicOutput<T>(path: string, write: (tmpPath: string) => Promise<T> | T): Promise<T> {
  makeDirs(dirname(path));
  const tmp = tempPathFor(path);
  try {
    const result = await write(tmp);
    refuseFolder(path);
    renameSync(tmp, path);
    return result;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
