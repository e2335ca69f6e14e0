// Streaming access to volumes larger than memory: a VolumeSource reads any box (a z-slab, a patch) without
// reading the whole file where the format allows it; a VolumeSink takes z-slabs in order and renames its
// output into place only when closed. RawSource/RawSink serve the formats whose voxels are one contiguous
// run of bytes, optionally gzip- or zlib-compressed: NIfTI and MetaImage.
import { once } from "node:events";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { endianness } from "node:os";
import { dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import { createDeflate, createGunzip, createGzip, createInflate, type Gunzip, type Inflate } from "node:zlib";
import { makeDirs, refuseFolder, tempPathFor } from "../util/atomic.ts";
import { checkIsFile, fsError, fsProblem } from "../util/fserror.ts";
import {
  type Box, type DType, DTYPES, type Volume, type VolumeHeader, type VoxelArray,
  allocVoxels, bytesOf, checkBox, headerOf, swapBytes, voxelCount, voxelsInto,
} from "./volume.ts";

if (endianness() !== "LE") throw new Error("lsmseg's volume I/O assumes a little-endian machine");

/** What a reader knows about its file beyond the header, for `lsmseg inspect` (fields where the format has them). */
export interface SourceInfo {
  format: string;
  zarrVersion?: number;
  /** Axis names of the stored array and its full shape (channels, time points included). */
  axes?: string[];
  fullShape?: number[];
  chunks?: number[];
  codec?: string;
  /** Pyramid levels (OME-Zarr) or 1. */
  levels?: number;
  channels?: number;
  timePoints?: number;
  unit?: string;
}

export interface VolumeSource {
  readonly path: string;
  readonly header: VolumeHeader;
  readonly info?: SourceInfo;
  /**
   * Reads the voxels of `box` (z, y, x). Reading boxes in increasing z is fastest for compressed files.
   * With `into` (large enough), the voxels are a view over its bytes, valid until `into` is reused.
   */
  readRegion(box: Box, into?: Uint8Array): Promise<Volume>;
  close(): Promise<void>;
}

export interface VolumeSink {
  readonly path: string;
  readonly header: VolumeHeader;
  /** Appends whole z-planes (a multiple of y·x voxels of the header's dtype), in z order. */
  writeSlab(data: VoxelArray): Promise<void>;
  /** Finishes the file and renames it into place; fails if fewer planes than the shape's z were written. */
  close(): Promise<void>;
  /** Removes the temporary output. */
  abort(): Promise<void>;
}

export type Compression = "none" | "gzip" | "zlib";

/** Where the voxels of a contiguous-layout file are, and how to turn their bytes into the header's dtype. */
export interface RawLayout {
  /** The file named in messages. */
  path: string;
  /** The file holding the voxels (the same as `path` except for a .mhd with a separate data file). */
  dataPath: string;
  /** Byte offset of the voxels in the file, or of the compressed stream when compressed. */
  dataOffset: number;
  /** For compressed files: bytes to skip in the decompressed stream before the voxels (a gzipped NIfTI's header). */
  inflatedOffset?: number;
  compression: Compression;
  bigEndian: boolean;
  /** The dtype stored in the file; the header's dtype differs when a scale is applied. */
  fileDtype: DType;
  header: VolumeHeader;
  /** NIfTI's scl_slope/scl_inter: value = stored·slope + inter. */
  scale?: { slope: number; inter: number };
  /** A file whose uncompressed data must be exactly the shape's size (no trailing bytes). */
  exactSize?: boolean;
}

/** Sequential reader over the decompressed bytes of a file, from an offset. */
class InflatedBytes {
  pos = 0;
  private iter: AsyncIterator<Buffer>;
  private stream: Gunzip | Inflate;
  private pending: Buffer | null = null;

  constructor(private readonly layout: RawLayout) {
    this.stream = layout.compression === "gzip" ? createGunzip({ chunkSize: 1 << 20 }) : createInflate({ chunkSize: 1 << 20 });
    const file = createReadStream(layout.dataPath, { start: layout.dataOffset, highWaterMark: 1 << 20 });
    pipeline(file, this.stream).catch(() => undefined); // errors surface through the iterator
    this.iter = this.stream[Symbol.asyncIterator]();
  }

  private async next(): Promise<Buffer | null> {
    if (this.pending) {
      const p = this.pending;
      this.pending = null;
      return p;
    }
    let r: IteratorResult<Buffer>;
    try {
      r = await this.iter.next();
    } catch (err) {
      const what = this.layout.compression === "gzip" ? "gzip" : "zlib";
      throw new Error(`${this.layout.path}: ${what} data is truncated or corrupt (${(err as Error).message})`);
    }
    return r.done ? null : r.value;
  }

  /** Fills `dst` with the next bytes, or throws naming how many bytes the file held. */
  async read(dst: Uint8Array, promised: number): Promise<void> {
    let filled = 0;
    while (filled < dst.length) {
      const chunk = await this.next();
      if (!chunk) {
        throw new Error(`${this.layout.path}: the header promises ${promised} bytes of voxel data but the file holds only ${this.held()}`);
      }
      const take = Math.min(chunk.length, dst.length - filled);
      dst.set(chunk.subarray(0, take), filled);
      filled += take;
      this.pos += take;
      if (take < chunk.length) this.pending = chunk.subarray(take);
    }
  }

  async skipTo(offset: number, promised: number): Promise<void> {
    while (this.pos < offset) {
      const chunk = await this.next();
      if (!chunk) {
        throw new Error(`${this.layout.path}: the header promises ${promised} bytes of voxel data but the file holds only ${this.held()}`);
      }
      const take = Math.min(chunk.length, offset - this.pos);
      this.pos += take;
      if (take < chunk.length) this.pending = chunk.subarray(take);
    }
  }

  private held(): number {
    return Math.max(0, this.pos - (this.layout.inflatedOffset ?? 0));
  }

  /** Reads to the end of the stream (zlib checks the trailer there); throws when the data is corrupt or cut. */
  async drain(): Promise<void> {
    while (await this.next()) { /* the bytes after the voxels: a NIfTI may carry them */ }
  }

  /** True when there is no byte left. */
  async atEnd(): Promise<boolean> {
    const chunk = await this.next();
    if (!chunk) return true;
    this.pending = chunk;
    return chunk.length === 0 ? this.atEnd() : false;
  }

  close(): void {
    this.stream.destroy();
  }
}

/** The compressed files whose stream was read to its end and checked, by path, size and mtime. */
const VERIFIED_STREAMS = new Set<string>();

/** A VolumeSource over a contiguous (optionally compressed) run of voxels. */
export class RawSource implements VolumeSource {
  readonly path: string;
  readonly header: VolumeHeader;
  private inflated: InflatedBytes | null = null;

  private constructor(private readonly layout: RawLayout) {
    this.path = layout.path;
    this.header = layout.header;
  }

  static async open(layout: RawLayout): Promise<RawSource> {
    const bytes = voxelCount(layout.header.shape) * DTYPES[layout.fileDtype].bytes;
    if (layout.compression === "none") {
      let size: number;
      try {
        const st = await stat(layout.dataPath);
        if (st.isDirectory()) throw Object.assign(new Error("is a folder"), { code: "EISDIR" });
        size = st.size;
      } catch (err) {
        throw new Error(`${layout.path}: data file ${layout.dataPath}: ${fsProblem(err)}`);
      }
      const held = size - layout.dataOffset;
      if (held < bytes) {
        throw new Error(`${layout.path}: the header promises ${bytes} bytes of voxel data (${layout.header.shape.join("×")} ${layout.fileDtype}) but the file holds only ${Math.max(0, held)}`);
      }
      if (layout.exactSize && held > bytes) {
        throw new Error(`${layout.path}: the dimensions ${layout.header.shape.join("×")} of ${layout.fileDtype} make ${bytes} bytes but the file holds ${held}`);
      }
    }
    return new RawSource(layout);
  }

  async readRegion(box: Box, into?: Uint8Array): Promise<Volume> {
    const { header, fileDtype } = this.layout;
    checkBox(this.path, header.shape, box);
    const [, ny, nx] = header.shape;
    const [z0, y0, x0] = box.start;
    const [dz, dy, dx] = box.size;
    const size = DTYPES[fileDtype].bytes;
    const rowBytes = nx * size;
    const totalBytes = voxelCount(header.shape) * size;
    const out = voxelsInto(fileDtype, dz * dy * dx, into);
    const outBytes = bytesOf(out);
    // Each plane's rows y0..y0+dy are one contiguous span; read it whole and keep columns x0..x0+dx.
    const span = new Uint8Array(dy * rowBytes);
    const keepWhole = x0 === 0 && dx === nx;
    let fd: Awaited<ReturnType<typeof open>> | null = null;
    try {
      if (this.layout.compression === "none") fd = await open(this.layout.dataPath, "r");
      for (let z = 0; z < dz; z++) {
        const offset = ((z0 + z) * ny + y0) * rowBytes;
        const dst = keepWhole ? outBytes.subarray(z * dy * rowBytes, (z + 1) * dy * rowBytes) : span;
        if (fd) {
          await readFully(fd, dst, this.layout.dataOffset + offset);
        } else {
          const inflated = await this.inflatedAt((this.layout.inflatedOffset ?? 0) + offset, totalBytes);
          await inflated.read(dst, totalBytes);
        }
        if (!keepWhole) {
          for (let y = 0; y < dy; y++) {
            const from = y * rowBytes + x0 * size;
            outBytes.set(span.subarray(from, from + dx * size), ((z * dy + y) * dx) * size);
          }
        }
      }
      if (this.layout.compression !== "none") await this.verifyStream(totalBytes);
    } finally {
      await fd?.close();
    }
    if (this.layout.bigEndian) swapBytes(outBytes, size);
    return { ...headerOf(header, [...box.size]), data: this.scaled(out) };
  }

  private scaled(raw: VoxelArray): VoxelArray {
    const s = this.layout.scale;
    if (!s) return raw;
    const out = allocVoxels(this.header.dtype, raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw[i] * s.slope + s.inter;
    return out;
  }

  /**
   * Reads the compressed stream to its end once, so that zlib checks the gzip trailer (CRC-32 and length) or
   * the zlib Adler-32: a file cut short or damaged after the voxels read is refused, also when only a region
   * was asked for. Once per file (path, size, mtime) and process.
   */
  private async verifyStream(totalBytes: number): Promise<void> {
    const st = await stat(this.layout.dataPath);
    const key = `${this.layout.dataPath}\0${st.size}\0${st.mtimeMs}`;
    if (VERIFIED_STREAMS.has(key)) return;
    const end = (this.layout.inflatedOffset ?? 0) + totalBytes;
    const inflated = await this.inflatedAt(end, totalBytes);
    if (!(await inflated.atEnd())) {
      if (this.layout.exactSize) {
        throw new Error(`${this.path}: the file holds more voxel data than the dimensions ${this.header.shape.join("×")} of ${this.layout.fileDtype} describe (${totalBytes} bytes)`);
      }
      await inflated.drain();
    }
    VERIFIED_STREAMS.add(key);
  }

  /** The decompressed stream positioned at `offset`, restarted when reading backwards. */
  private async inflatedAt(offset: number, promised: number): Promise<InflatedBytes> {
    if (!this.inflated || this.inflated.pos > offset) {
      this.inflated?.close();
      this.inflated = new InflatedBytes(this.layout);
    }
    await this.inflated.skipTo(offset, promised);
    return this.inflated;
  }

  async close(): Promise<void> {
    this.inflated?.close();
    this.inflated = null;
  }
}

async function readFully(fd: Awaited<ReturnType<typeof open>>, dst: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < dst.length) {
    const { bytesRead } = await fd.read(dst, done, dst.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

export interface RawSinkOptions {
  path: string;
  header: VolumeHeader;
  /** Bytes written before the voxels. */
  prefix: Uint8Array;
  /** Compress the prefix with the voxels (a gzipped NIfTI) rather than writing it plain (MetaImage). */
  compressPrefix?: boolean;
  compression: Compression;
  /** gzip/zlib level (1 fastest … 9 smallest). */
  level?: number;
  /** Called after the data with the compressed data's byte count; returns [position, bytes] patches. */
  patch?: (dataBytes: number) => Array<[number, Uint8Array]>;
}

/** A VolumeSink writing a prefix (a header) then the voxels, through gzip/zlib when asked. */
export class RawSink implements VolumeSink {
  readonly path: string;
  readonly header: VolumeHeader;
  private readonly tmp: string;
  private planesWritten = 0;
  private dataBytes = 0;
  private file!: WriteStream;
  private zstream: ReturnType<typeof createGzip> | null = null;
  private done!: Promise<void>;
  private failed: Error | null = null;

  private constructor(private readonly opts: RawSinkOptions) {
    this.path = opts.path;
    this.header = opts.header;
    this.tmp = tempPathFor(opts.path);
  }

  static async create(opts: RawSinkOptions): Promise<RawSink> {
    const sink = new RawSink(opts);
    refuseFolder(opts.path);
    makeDirs(dirname(opts.path));
    sink.file = createWriteStream(sink.tmp, { highWaterMark: 1 << 20 });
    if (!opts.compressPrefix || opts.compression === "none") sink.file.write(opts.prefix);
    const level = opts.level ?? 1;
    if (opts.compression !== "none") {
      sink.zstream = opts.compression === "gzip" ? createGzip({ level, chunkSize: 1 << 20 }) : createDeflate({ level, chunkSize: 1 << 20 });
      sink.zstream.on("data", (c: Buffer) => { sink.dataBytes += c.length; });
      sink.done = pipeline(sink.zstream, sink.file);
      if (opts.compressPrefix) sink.zstream.write(opts.prefix);
    } else {
      sink.done = once(sink.file, "finish").then(() => undefined);
    }
    // a full disk (ENOSPC, EFBIG) names the output
    sink.done = sink.done.catch((err: unknown) => { throw (err as NodeJS.ErrnoException).code ? fsError(opts.path, err) : err; });
    sink.done.catch((err: Error) => { sink.failed = err; });
    return sink;
  }

  async writeSlab(data: VoxelArray): Promise<void> {
    this.planesWritten += slabPlanes(this, data, this.planesWritten).length;
    if (this.failed) throw this.failed;
    const bytes = Buffer.from(bytesOf(data)); // a copy: the caller may reuse its array
    const target = this.zstream ?? this.file;
    if (!this.zstream) this.dataBytes += bytes.length;
    if (!target.write(bytes)) await Promise.race([once(target, "drain"), this.done]);
    if (this.failed) throw this.failed;
  }

  async close(): Promise<void> {
    if (this.planesWritten !== this.header.shape[0]) {
      await this.abort();
      throw new Error(`${this.path}: ${this.planesWritten} of ${this.header.shape[0]} planes were written`);
    }
    (this.zstream ?? this.file).end();
    await this.done;
    const patches = this.opts.patch?.(this.dataBytes) ?? [];
    if (patches.length) {
      const fd = await open(this.tmp, "r+");
      try {
        for (const [pos, bytes] of patches) await fd.write(bytes, 0, bytes.length, pos);
      } finally {
        await fd.close();
      }
    }
    refuseFolder(this.path);
    await rename(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    this.zstream?.destroy();
    // the stream opens its file asynchronously: destroyed before the open completed, it still creates the file, then
    // closes it. Removing the temporary before that 'close' left it behind (seen on Node 24 after a failed convert).
    const closed = this.file.closed ? Promise.resolve() : once(this.file, "close");
    this.file.destroy();
    await closed;
    await rm(this.tmp, { force: true });
  }
}

/**
 * The whole z-planes of a slab written to `sink` after `planesSoFar` planes (views, no copies); throws when the
 * slab is not made of whole planes or would pass the shape's depth.
 */
export function slabPlanes(sink: VolumeSink, data: VoxelArray, planesSoFar: number): VoxelArray[] {
  const [nz, ny, nx] = sink.header.shape;
  const plane = ny * nx;
  if (data.length % plane !== 0) throw new Error(`${sink.path}: a slab must hold whole planes of ${ny}×${nx} voxels, got ${data.length}`);
  const count = data.length / plane;
  if (planesSoFar + count > nz) throw new Error(`${sink.path}: more planes written than the shape's ${nz}`);
  return Array.from({ length: count }, (_, k) => data.subarray(k * plane, (k + 1) * plane));
}

/** Reads everything from `source` and closes it. */
export async function readAll(source: VolumeSource): Promise<Volume> {
  try {
    return await source.readRegion({ start: [0, 0, 0], size: [...source.header.shape] });
  } finally {
    await source.close();
  }
}

/** Writes `vol` through `sink` in slabs of at most `slabPlanes` planes, aborting the sink on failure. */
export async function writeAll(sink: VolumeSink, vol: Volume, slabPlanes = 64): Promise<void> {
  const plane = vol.shape[1] * vol.shape[2];
  try {
    for (let z = 0; z < vol.shape[0]; z += slabPlanes) {
      await sink.writeSlab(vol.data.subarray(z * plane, Math.min(vol.shape[0], z + slabPlanes) * plane));
    }
    await sink.close();
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

/** The first `n` bytes of a file (decompressed when `gzip`), fewer if the file is shorter. */
export async function readHead(path: string, n: number, gzip: boolean): Promise<Buffer> {
  if (!gzip) {
    checkIsFile(path);
    const fd = await open(path, "r").catch((err: unknown) => { throw fsError(path, err); });
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fd.read(buf, 0, n, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fd.close();
    }
  }
  checkIsFile(path);
  const chunks: Buffer[] = [];
  let got = 0;
  const gunzip = createGunzip();
  const file = createReadStream(path, { highWaterMark: 1 << 16 });
  pipeline(file, gunzip).catch(() => undefined);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) break;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = code && !code.startsWith("Z_") ? fsProblem(err) : `gzip data is truncated or corrupt (${(err as Error).message})`;
    throw new Error(`${path}: ${msg}`);
  } finally {
    gunzip.destroy();
    file.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}
