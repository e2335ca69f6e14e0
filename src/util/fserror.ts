// File-system errors in the user's words: the path, then what is wrong with it, never a bare errno line
// ("EISDIR: illegal operation on a directory, read") and never "file not found" for a file that is there.
import { statSync } from "node:fs";

const WORDS: Record<string, string> = {
  ENOENT: "file not found",
  EISDIR: "is a folder, not a file",
  ENOTDIR: "a part of the path is a file, not a folder",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EMFILE: "too many open files (raise the limit with 'ulimit -n')",
  ENFILE: "too many open files on this machine",
  ENOSPC: "the disk is full",
  EFBIG: "the file grew past the largest size allowed (the file system's, or this process's: ulimit -f)",
  EDQUOT: "the disk quota is exhausted",
  EROFS: "the file system is read-only",
  EIO: "an input/output error (a failing disk or network share?)",
  ELOOP: "too many symbolic links (a link loop?)",
  ENAMETOOLONG: "the name is too long",
};

/**
 * What went wrong, in words: "permission denied", "the disk is full", … (the error's own message otherwise);
 * `notFound` says ENOENT where "file not found" is not the word (a folder, an input).
 */
export function fsProblem(err: unknown, notFound = WORDS.ENOENT): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ENOENT") return notFound;
  return (code && WORDS[code]) ?? (err instanceof Error ? err.message : String(err));
}

/** `${path}: <what went wrong>`, as an Error; the original error is its cause. */
export function fsError(path: string, err: unknown, notFound = WORDS.ENOENT): Error {
  return new Error(`${path}: ${fsProblem(err, notFound)}`, { cause: err });
}

/** Throws, naming `path`, unless it is a file that exists (a folder is refused with its own message). */
export function checkIsFile(path: string, what = "file"): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw fsError(path, err);
  }
  if (st.isDirectory()) throw new Error(`${path}: is a folder, not a ${what}`);
}

/** Throws, naming `path`, unless something (a file or a folder) is there: ENOENT says `notFound`, others what happened. */
export function checkExists(path: string, notFound = WORDS.ENOENT): void {
  try {
    statSync(path);
  } catch (err) {
    throw fsError(path, err, notFound);
  }
}
