// Outputs are written to a temporary name beside the target and renamed into place, so a crash or a
// kill never leaves half a file under the final name (rename is atomic within one file system).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

let counter = 0;

/** A temporary path beside `path`, unique within this process. */
export function tempPathFor(path: string): string {
  counter += 1;
  return `${path}.tmp-${process.pid}-${counter}`;
}

/** Writes `chunks` to `path` atomically (temporary file, fsync, rename). */
export function writeFileAtomic(path: string, ...chunks: Uint8Array[]): void {
  mkdirSync(dirname(path), { recursive: true });
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
    renameSync(tmp, path); // fails, for one, when `path` is a directory: the temporary file must go then too
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
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const result = await write(tmp);
    rmSync(path, { recursive: true, force: true });
    renameSync(tmp, path);
    return result;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
