// A minimal tar writer (POSIX ustar, regular files only) streamed through gzip: enough for the model
// tarball Grand Challenge unpacks into /opt/ml/model, without a dependency.
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { withAtomicOutput } from "./atomic.ts";

export interface TarEntry {
  /** The path inside the archive (ASCII, at most 100 bytes). */
  name: string;
  /** The file on disk whose bytes it holds. */
  path: string;
}

const BLOCK = 512;

/** The 512-byte ustar header of a regular file. */
export function tarHeader(name: string, size: number, mtimeS: number, mode = 0o644): Buffer {
  if (!/^[\x20-\x7e]+$/.test(name) || Buffer.byteLength(name) > 100) throw new Error(`tar: '${name}': names must be printable ASCII of at most 100 bytes`);
  const h = Buffer.alloc(BLOCK);
  const field = (offset: number, length: number, value: string) => h.write(value, offset, length, "ascii");
  const octal = (offset: number, length: number, value: number) => field(offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
  field(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, size);
  octal(136, 12, Math.floor(mtimeS));
  field(148, 8, " ".repeat(8)); // the checksum counts its own field as spaces
  field(156, 1, "0"); // regular file
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  field(265, 32, "root");
  field(297, 32, "root");
  let sum = 0;
  for (const b of h) sum += b;
  field(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

async function* tarStream(entries: TarEntry[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const st = statSync(e.path);
    yield tarHeader(e.name, st.size, st.mtimeMs / 1000);
    let written = 0;
    for await (const chunk of createReadStream(e.path)) {
      written += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (written !== st.size) throw new Error(`tar: ${e.path} changed size while being archived`);
    if (written % BLOCK) yield Buffer.alloc(BLOCK - (written % BLOCK));
  }
  yield Buffer.alloc(2 * BLOCK); // end of archive
}

/** Writes `entries` as a gzip-compressed tar file (temporary name, then rename). */
export async function writeTarGz(out: string, entries: TarEntry[]): Promise<void> {
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) throw new Error(`tar: '${e.name}' is listed twice`);
    names.add(e.name);
  }
  await withAtomicOutput(out, (tmp) => pipeline(Readable.from(tarStream(entries)), createGzip(), createWriteStream(tmp)));
}
