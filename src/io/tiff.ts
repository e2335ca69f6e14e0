// TIFF and BigTIFF (TIFF 6.0; BigTIFF as libtiff writes it): multi-page files with one page per z-plane, or a
// folder of one file per z-plane read in natural order. uint8/uint16/float32 (and the other Volume dtypes),
// uncompressed, deflate, LZW, PackBits or zstd (fzstd), strips or tiles. OME-XML and ImageJ hyperstack metadata
// (spacing, channels, time points). Hand-written: the npm TIFF decoders (utif, geotiff) write neither BigTIFF
// nor LZW nor float, and reading a region must fetch only the strips it needs.
import { closeSync, fstatSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { deflateSync, inflateSync } from "node:zlib";
import { decompress as zstdDecompress } from "fzstd";
import { makeDirs, refuseFolder, tempPathFor } from "../util/atomic.ts";
import { checkIsFile, fsError } from "../util/fserror.ts";
import { OutputExistsError, swapFolderIn } from "../util/output.ts";
import { lzwDecode, lzwEncode } from "./lzw.ts";
import { slabPlanes, type SourceInfo, type VolumeSink, type VolumeSource } from "./stream.ts";
import {
  type Box, type DType, DTYPES, type Vec3, type Volume, type VolumeHeader, type VoxelArray,
  bytesOf, checkBox, headerOf, swapBytes, voxelsInto,
} from "./volume.ts";

const TAG = {
  NewSubfileType: 254, ImageWidth: 256, ImageLength: 257, BitsPerSample: 258, Compression: 259,
  Photometric: 262, ImageDescription: 270, StripOffsets: 273, SamplesPerPixel: 277, RowsPerStrip: 278,
  StripByteCounts: 279, XResolution: 282, YResolution: 283, PlanarConfig: 284, ResolutionUnit: 296,
  Software: 305, Predictor: 317, TileWidth: 322, TileLength: 323, TileOffsets: 324, TileByteCounts: 325,
  SampleFormat: 339,
} as const;
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };
const COMPRESSION: Record<string, number> = { none: 1, lzw: 5, deflate: 8 };
const COMPRESSION_NAME: Record<number, string> = { 1: "none", 5: "lzw", 8: "deflate", 32946: "deflate", 32773: "packbits", 50000: "zstd" };

/** One page (one z-plane): where its strips or tiles are and how to decode them. */
interface Page {
  width: number;
  height: number;
  dtype: DType;
  compression: number;
  predictor: number;
  /** Segment (strip or tile) size in pixels; a strip is as wide as the page. */
  segWidth: number;
  segHeight: number;
  offsets: number[];
  byteCounts: number[];
  description: string;
  xRes?: number;
  yRes?: number;
  resUnit: number;
}

function dtypeFrom(path: string, bits: number, format: number): DType {
  const key = `${format}:${bits}`;
  const table: Record<string, DType> = {
    "1:8": "uint8", "1:16": "uint16", "1:32": "uint32", "2:8": "int8", "2:16": "int16", "2:32": "int32", "3:32": "float32", "3:64": "float64",
  };
  const d = table[key];
  if (!d) throw new Error(`${path}: unsupported TIFF sample type (BitsPerSample ${bits}, SampleFormat ${format})`);
  return d;
}

/** A parsed TIFF file: its byte order, pages, and an open descriptor for reading segments. */
class TiffFile {
  readonly pages: Page[] = [];
  private fd: number;
  private le = true;
  private big = false;

  constructor(readonly path: string, maxPages = Infinity) {
    checkIsFile(path, "TIFF file (a folder of z-planes is named without .tif)");
    try {
      this.fd = openSync(path, "r");
    } catch (err) {
      throw fsError(path, err);
    }
    try {
      this.parse(maxPages);
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private bytes(pos: number, n: number): Buffer {
    const b = Buffer.alloc(n);
    const got = readSync(this.fd, b, 0, n, pos);
    if (got < n) throw new Error(`${this.path}: truncated TIFF (wanted ${n} bytes at offset ${pos}, file ends first)`);
    return b;
  }

  private parse(maxPages: number): void {
    const size = fstatSync(this.fd).size;
    if (size < 8) throw new Error(`${this.path}: not a TIFF file (${size} bytes)`);
    const h = this.bytes(0, Math.min(16, size));
    const order = h.toString("latin1", 0, 2);
    if (order !== "II" && order !== "MM") throw new Error(`${this.path}: not a TIFF file (starts with '${order}')`);
    this.le = order === "II";
    const magic = this.le ? h.readUInt16LE(2) : h.readUInt16BE(2);
    if (magic === 43) this.big = true;
    else if (magic !== 42) throw new Error(`${this.path}: not a TIFF file (version ${magic}, expected 42 or 43)`);
    let ifd = this.big ? this.u64(h, 8) : this.u32(h, 4);
    const seen = new Set<number>();
    while (ifd !== 0 && this.pages.length < maxPages) {
      if (seen.has(ifd)) throw new Error(`${this.path}: TIFF page chain loops back to offset ${ifd}`);
      seen.add(ifd);
      if (ifd >= size) throw new Error(`${this.path}: page ${this.pages.length} starts at offset ${ifd}, beyond the file's ${size} bytes`);
      ifd = this.parseIfd(ifd, size);
    }
    if (this.pages.length === 0) throw new Error(`${this.path}: TIFF has no image pages`);
  }

  private u16(b: Buffer, o: number): number { return this.le ? b.readUInt16LE(o) : b.readUInt16BE(o); }
  private u32(b: Buffer, o: number): number { return this.le ? b.readUInt32LE(o) : b.readUInt32BE(o); }
  private u64(b: Buffer, o: number): number { return Number(this.le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)); }

  /** Parses the IFD at `pos`; returns the next IFD's offset. */
  private parseIfd(pos: number, fileSize: number): number {
    const countSize = this.big ? 8 : 2, entrySize = this.big ? 20 : 12, inline = this.big ? 8 : 4;
    const count = this.big ? this.u64(this.bytes(pos, 8), 0) : this.u16(this.bytes(pos, 2), 0);
    const block = this.bytes(pos + countSize, count * entrySize + (this.big ? 8 : 4));
    const tags = new Map<number, number[] | string>();
    for (let e = 0; e < count; e++) {
      const o = e * entrySize;
      const tag = this.u16(block, o), type = this.u16(block, o + 2);
      const n = this.big ? this.u64(block, o + 4) : this.u32(block, o + 4);
      const tsize = TYPE_SIZE[type];
      if (!tsize) continue;
      const bytes = n * tsize;
      let data: Buffer;
      if (bytes <= inline) data = block.subarray(o + (this.big ? 12 : 8), o + (this.big ? 12 : 8) + bytes);
      else {
        const at = this.big ? this.u64(block, o + 12) : this.u32(block, o + 8);
        if (at + bytes > fileSize) throw new Error(`${this.path}: tag ${tag} of page ${this.pages.length} points beyond the end of the file`);
        data = this.bytes(at, bytes);
      }
      tags.set(tag, type === 2 ? data.toString("latin1").replace(/\0+$/, "") : this.values(data, type, n));
    }
    const next = this.big ? this.u64(block, count * entrySize) : this.u32(block, count * entrySize);
    const num = (tag: number, fallback?: number): number => {
      const v = tags.get(tag);
      if (Array.isArray(v) && v.length > 0) return v[0];
      if (fallback === undefined) throw new Error(`${this.path}: page ${this.pages.length} lacks TIFF tag ${tag}`);
      return fallback;
    };
    const list = (tag: number): number[] => {
      const v = tags.get(tag);
      return Array.isArray(v) ? v : [];
    };
    if (num(TAG.NewSubfileType, 0) & 1) return next; // a reduced-resolution copy, not a z-plane
    const samples = num(TAG.SamplesPerPixel, 1);
    if (samples !== 1) throw new Error(`${this.path}: page ${this.pages.length} has ${samples} samples per pixel; only single-channel images are supported`);
    const width = num(TAG.ImageWidth), height = num(TAG.ImageLength);
    const tiled = tags.has(TAG.TileOffsets);
    const page: Page = {
      width, height,
      dtype: dtypeFrom(this.path, num(TAG.BitsPerSample, 1), num(TAG.SampleFormat, 1)),
      compression: num(TAG.Compression, 1),
      predictor: num(TAG.Predictor, 1),
      segWidth: tiled ? num(TAG.TileWidth) : width,
      segHeight: tiled ? num(TAG.TileLength) : Math.min(height, num(TAG.RowsPerStrip, height)),
      offsets: list(tiled ? TAG.TileOffsets : TAG.StripOffsets),
      byteCounts: list(tiled ? TAG.TileByteCounts : TAG.StripByteCounts),
      description: typeof tags.get(TAG.ImageDescription) === "string" ? (tags.get(TAG.ImageDescription) as string) : "",
      xRes: tags.has(TAG.XResolution) ? num(TAG.XResolution) : undefined,
      yRes: tags.has(TAG.YResolution) ? num(TAG.YResolution) : undefined,
      resUnit: num(TAG.ResolutionUnit, 2),
    };
    if (![1, 5, 8, 32946, 32773, 50000].includes(page.compression)) {
      throw new Error(`${this.path}: page ${this.pages.length} uses TIFF compression ${page.compression}; lsmseg reads none (1), LZW (5), deflate (8), PackBits (32773) and zstd (50000)`);
    }
    if (page.predictor !== 1 && page.predictor !== 2) throw new Error(`${this.path}: page ${this.pages.length} uses TIFF predictor ${page.predictor}; lsmseg reads none (1) and horizontal (2)`);
    const segs = Math.ceil(height / page.segHeight) * Math.ceil(width / page.segWidth);
    if (page.offsets.length !== segs || page.byteCounts.length !== segs) {
      throw new Error(`${this.path}: page ${this.pages.length} lists ${page.offsets.length} strips/tiles, its size ${width}×${height} needs ${segs}`);
    }
    for (let s = 0; s < segs; s++) {
      if (page.offsets[s] + page.byteCounts[s] > fileSize) {
        throw new Error(`${this.path}: page ${this.pages.length} strip ${s} ends at byte ${page.offsets[s] + page.byteCounts[s]}, beyond the file's ${fileSize} bytes (truncated file?)`);
      }
    }
    this.pages.push(page);
    return next;
  }

  private values(b: Buffer, type: number, n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      switch (type) {
        case 1: case 7: out.push(b[i]); break;
        case 6: out.push(b.readInt8(i)); break;
        case 3: out.push(this.u16(b, 2 * i)); break;
        case 8: out.push(this.le ? b.readInt16LE(2 * i) : b.readInt16BE(2 * i)); break;
        case 4: case 13: out.push(this.u32(b, 4 * i)); break;
        case 9: out.push(this.le ? b.readInt32LE(4 * i) : b.readInt32BE(4 * i)); break;
        case 5: out.push(this.u32(b, 8 * i) / this.u32(b, 8 * i + 4)); break;
        case 10: {
          const int32 = (at: number) => (this.le ? b.readInt32LE(at) : b.readInt32BE(at));
          out.push(int32(8 * i) / int32(8 * i + 4));
          break;
        }
        case 11: out.push(this.le ? b.readFloatLE(4 * i) : b.readFloatBE(4 * i)); break;
        case 12: out.push(this.le ? b.readDoubleLE(8 * i) : b.readDoubleBE(8 * i)); break;
        case 16: case 18: out.push(this.u64(b, 8 * i)); break;
        case 17: out.push(Number(this.le ? b.readBigInt64LE(8 * i) : b.readBigInt64BE(8 * i))); break;
      }
    }
    return out;
  }

  /** Scratch for the rows of an uncompressed strip or tile when only some columns are wanted. */
  private scratch = Buffer.alloc(0);

  /** Copies the wanted rows and columns of uncompressed segment `s` from the file into `outBytes`. */
  private readDirect(
    p: Page, s: number, sy: number, sx: number, rows: number,
    y0: number, dy: number, x0: number, dx: number, outBytes: Uint8Array, at: number, size: number,
  ): void {
    const segY0 = sy * p.segHeight, segX0 = sx * p.segWidth;
    const ya = Math.max(y0, segY0), yb = Math.min(y0 + dy, segY0 + rows, p.height);
    const xa = Math.max(x0, segX0), xb = Math.min(x0 + dx, segX0 + p.segWidth, p.width);
    const rowBytes = p.segWidth * size;
    const from = p.offsets[s] + (ya - segY0) * rowBytes;
    const readAll = (buf: Uint8Array, offset: number, n: number, pos: number) => {
      for (let done = 0; done < n;) {
        const got = readSync(this.fd, buf, offset + done, n - done, pos + done);
        if (got <= 0) throw new Error(`${this.path}: truncated TIFF (wanted ${n} bytes at offset ${pos}, file ends first)`);
        done += got;
      }
    };
    if (segX0 === 0 && xa === 0 && xb - xa === p.segWidth && dx === p.segWidth) {
      // whole rows, contiguous in the file and in the output
      readAll(outBytes, (at + (ya - y0) * dx) * size, (yb - ya) * rowBytes, from);
      return;
    }
    const n = (yb - ya) * rowBytes;
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(n);
    readAll(this.scratch, 0, n, from);
    for (let y = ya; y < yb; y++) {
      const f = ((y - ya) * p.segWidth + (xa - segX0)) * size;
      outBytes.set(this.scratch.subarray(f, f + (xb - xa) * size), (at + (y - y0) * dx + (xa - x0)) * size);
    }
  }

  /** Decodes rows y0..y0+dy, columns x0..x0+dx of page `index` into `out` at `at` (voxels). */
  readPlane(index: number, y0: number, dy: number, x0: number, dx: number, out: VoxelArray, at: number): void {
    const p = this.pages[index];
    const size = DTYPES[p.dtype].bytes;
    const across = Math.ceil(p.width / p.segWidth);
    const segBytes = p.segWidth * p.segHeight * size;
    const outBytes = bytesOf(out);
    // uncompressed, native byte order, no predictor: the file's bytes are the voxels, read straight into place
    const direct = p.compression === 1 && p.predictor === 1 && (this.le || size === 1);
    for (let sy = Math.floor(y0 / p.segHeight); sy * p.segHeight < y0 + dy; sy++) {
      for (let sx = Math.floor(x0 / p.segWidth); sx * p.segWidth < x0 + dx; sx++) {
        const s = sy * across + sx;
        // The last strip of a page may hold fewer rows; tiles are always whole.
        const rows = p.segWidth === p.width ? Math.min(p.segHeight, p.height - sy * p.segHeight) : p.segHeight;
        const expected = p.segWidth === p.width ? rows * p.width * size : segBytes;
        if (direct) {
          if (p.byteCounts[s] < expected) throw new Error(`${this.path}: page ${index} strip ${s} holds ${p.byteCounts[s]} bytes, its ${rows} rows need ${expected}`);
          this.readDirect(p, s, sy, sx, rows, y0, dy, x0, dx, outBytes, at, size);
          continue;
        }
        const raw = this.bytes(p.offsets[s], p.byteCounts[s]);
        let seg: Uint8Array;
        try {
          seg = p.compression === 1 ? raw : p.compression === 5 ? lzwDecode(raw, expected) : p.compression === 32773 ? packbitsDecode(raw, expected)
            : p.compression === 50000 ? zstdDecompress(raw) : inflateSync(raw);
        } catch (err) {
          throw new Error(`${this.path}: page ${index} strip ${s} does not decode (${(err as Error).message})`);
        }
        if (seg.length < expected) throw new Error(`${this.path}: page ${index} strip ${s} holds ${seg.length} bytes, its ${rows} rows need ${expected}`);
        seg = new Uint8Array(seg.subarray(0, expected)); // aligned copy, ours to modify
        if (!this.le) swapBytes(seg, size);
        if (p.predictor === 2) undoHorizontalDifferencing(seg, p.dtype, p.segWidth);
        const segY0 = sy * p.segHeight, segX0 = sx * p.segWidth;
        const ya = Math.max(y0, segY0), yb = Math.min(y0 + dy, segY0 + rows, p.height);
        const xa = Math.max(x0, segX0), xb = Math.min(x0 + dx, segX0 + p.segWidth, p.width);
        for (let y = ya; y < yb; y++) {
          const from = ((y - segY0) * p.segWidth + (xa - segX0)) * size;
          outBytes.set(seg.subarray(from, from + (xb - xa) * size), (at + (y - y0) * dx + (xa - x0)) * size);
        }
      }
    }
  }
}

/** PackBits (TIFF 6.0 §9): n ≥ 0 copies n+1 literal bytes, n < 0 (not −128) repeats the next byte 1−n times. */
function packbitsDecode(src: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let i = 0, o = 0;
  while (i < src.length && o < expected) {
    const n = (src[i++] << 24) >> 24;
    if (n >= 0) {
      out.set(src.subarray(i, i + n + 1).subarray(0, expected - o), o);
      o += n + 1; i += n + 1;
    } else if (n !== -128) {
      out.fill(src[i++], o, Math.min(expected, o + 1 - n));
      o += 1 - n;
    }
  }
  return out.subarray(0, Math.min(o, expected));
}

function undoHorizontalDifferencing(seg: Uint8Array, dtype: DType, width: number): void {
  if (dtype === "float32" || dtype === "float64") throw new Error("horizontal predictor on float data");
  const v = new DTYPES[dtype].array(seg.buffer, seg.byteOffset, seg.byteLength / DTYPES[dtype].bytes);
  for (let r = 0; r < v.length; r += width) for (let x = 1; x < width && r + x < v.length; x++) v[r + x] += v[r + x - 1];
}

/** Spacing (z, y, x in µm) from lsmseg's or ImageJ's description and the resolution tags. */
function spacingFrom(p: Page): Vec3 {
  let z = 1, y = 1, x = 1;
  const perUnit = p.resUnit === 3 ? 1e4 : p.resUnit === 2 ? 25400 : 1;
  if (p.xRes && p.xRes > 0) x = perUnit / p.xRes;
  if (p.yRes && p.yRes > 0) y = perUnit / p.yRes;
  if (p.description.startsWith("{")) {
    try {
      const meta = JSON.parse(p.description) as { spacing_um?: number[] };
      if (Array.isArray(meta.spacing_um) && meta.spacing_um.length === 3) return meta.spacing_um.map(Number) as Vec3;
    } catch {
      // not lsmseg's JSON: keep the resolution tags
    }
  }
  const ij = /(?:^|\n)spacing=([0-9.eE+-]+)/.exec(p.description);
  if (ij) z = Number(ij[1]);
  return [z, y, x];
}

function checkSamePlanes(where: (i: number) => string, pages: Page[]): void {
  const p0 = pages[0];
  for (let i = 1; i < pages.length; i++) {
    const p = pages[i];
    if (p.width !== p0.width || p.height !== p0.height) {
      throw new Error(`${where(i)}: slice is ${p.width}×${p.height} but ${where(0)} is ${p0.width}×${p0.height} (mismatched slice sizes)`);
    }
    if (p.dtype !== p0.dtype) throw new Error(`${where(i)}: slice is ${p.dtype} but ${where(0)} is ${p0.dtype}`);
  }
}

/** Reads planes from a list of (file, page) pairs. */
class PlaneSource implements VolumeSource {
  constructor(
    readonly path: string,
    readonly header: VolumeHeader,
    private readonly plane: (z: number) => { file: TiffFile; page: number; done: () => void },
    private readonly onClose: () => void,
    readonly info?: SourceInfo,
  ) {}

  async readRegion(box: Box, into?: Uint8Array): Promise<Volume> {
    checkBox(this.path, this.header.shape, box);
    const [z0, y0, x0] = box.start;
    const [dz, dy, dx] = box.size;
    const out = voxelsInto(this.header.dtype, dz * dy * dx, into);
    for (let z = 0; z < dz; z++) {
      const { file, page, done } = this.plane(z0 + z);
      try {
        file.readPlane(page, y0, dy, x0, dx, out, z * dy * dx);
      } finally {
        done();
      }
    }
    return { ...headerOf(this.header, [...box.size]), data: out };
  }

  async close(): Promise<void> {
    this.onClose();
  }
}

/** The number of pages of a TIFF file, counting at most `max` (cheap: only the first IFDs are read). */
export function tiffPageCount(path: string, max = 2): number {
  const f = new TiffFile(path, max);
  f.close();
  return f.pages.length;
}

/** A length unit's size in µm (OME-XML's UnitsLength symbols, ImageJ's unit names); undefined when unknown. */
function unitUm(unit: string | undefined): number | undefined {
  if (unit === undefined) return 1;
  const u = unit.replace(/^(Âµ|\\u00B5|μ)/, "µ").trim();
  const table: Record<string, number> = {
    "µm": 1, um: 1, micron: 1, microns: 1, micrometer: 1, nm: 1e-3, nanometer: 1e-3, mm: 1e3, millimeter: 1e3,
    cm: 1e4, m: 1e6, "Å": 1e-4, pixel: 1, "": 1,
  };
  return table[u];
}

/** What an OME-XML or ImageJ description says about the pages: their C, Z, T sizes and order, and the spacing. */
interface PlaneLayout {
  kind: "OME-TIFF" | "ImageJ hyperstack" | "TIFF";
  sizeC: number;
  sizeZ: number;
  sizeT: number;
  /** Page index of (c, z, t). */
  pageOf: (c: number, z: number, t: number) => number;
  spacingUm?: Vec3;
  unit?: string;
}

function attr(xml: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(xml)?.[1];
}

/** The layout an OME-XML (its first Image's Pixels) or an ImageJ hyperstack description gives; null for neither. */
function layoutFrom(path: string, p: Page, pages: number): PlaneLayout | null {
  const d = p.description;
  if (d.includes("<OME")) {
    const pixels = /<(?:\w+:)?Pixels\s[^>]*>/.exec(d)?.[0];
    if (!pixels) throw new Error(`${path}: OME-XML has no Pixels element`);
    const size = (n: string) => {
      const v = Number(attr(pixels, n) ?? 1);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${path}: OME-XML Pixels ${n}="${attr(pixels, n)}" is not a positive integer`);
      return v;
    };
    const [sizeC, sizeZ, sizeT] = [size("SizeC"), size("SizeZ"), size("SizeT")];
    // interleaved samples (RGB) are one page per c-group: SizeC counts them, the pages do not
    const perPage = Math.max(1, Number(/SamplesPerPixel="(\d+)"/.exec(d)?.[1] ?? 1));
    const c = sizeC / perPage;
    const order = attr(pixels, "DimensionOrder") ?? "XYZCT";
    if (!/^XY(ZCT|ZTC|CZT|CTZ|TZC|TCZ)$/.test(order)) throw new Error(`${path}: OME-XML DimensionOrder "${order}" is not one of XYZCT, XYZTC, XYCZT, XYCTZ, XYTZC, XYTCZ`);
    const sizes: Record<string, number> = { Z: sizeZ, C: c, T: sizeT };
    const pageOf = (ci: number, zi: number, ti: number) => {
      const at: Record<string, number> = { Z: zi, C: ci, T: ti };
      let index = 0, stride = 1;
      for (const a of order.slice(2)) { index += at[a] * stride; stride *= sizes[a]; }
      return index;
    };
    const um = (axis: string, fallback: number) => {
      const v = attr(pixels, `PhysicalSize${axis}`);
      if (v === undefined) return fallback;
      const unit = attr(pixels, `PhysicalSize${axis}Unit`);
      const f = unitUm(unit);
      if (f === undefined) throw new Error(`${path}: OME-XML PhysicalSize${axis}Unit "${unit}" is not a length unit lsmseg knows`);
      return Number(v) * f;
    };
    const fromTags = spacingFrom(p);
    return { kind: "OME-TIFF", sizeC: c, sizeZ, sizeT, pageOf, spacingUm: [um("Z", 1), um("Y", fromTags[1]), um("X", fromTags[2])] };
  }
  if (d.startsWith("ImageJ=")) {
    const kv = new Map(d.split("\n").map((l) => l.split("=", 2) as [string, string]).filter((e) => e.length === 2));
    const n = (k: string) => Number(kv.get(k) ?? 1);
    const sizeC = n("channels"), sizeT = n("frames");
    let sizeZ = n("slices");
    if (!kv.has("slices") && sizeC === 1 && sizeT === 1) sizeZ = pages; // a plain stack: images=N only
    const f = unitUm(kv.get("unit")) ?? 1;
    const [z, y, x] = spacingFrom(p);
    const tagUnit = p.resUnit === 1 ? f : 1; // resolution tags without a unit are in ImageJ's unit
    return {
      kind: "ImageJ hyperstack", sizeC, sizeZ, sizeT, unit: kv.get("unit"),
      // ImageJ stores pages TZC…: channel fastest, then slice, then frame
      pageOf: (c, zi, t) => c + sizeC * (zi + sizeZ * t),
      spacingUm: [kv.has("spacing") ? z * f : z, y * tagUnit, x * tagUnit],
    };
  }
  return null;
}

/**
 * Opens a multi-page TIFF or BigTIFF (one page per z-plane). OME-TIFF (OME-XML) and ImageJ hyperstacks give the
 * spacing and their C/Z/T sizes: a file with more than one channel or time point needs `channel`/`time`.
 */
export async function openTiff(path: string, o: { channel?: number; time?: number; series?: number; level?: number } = {}): Promise<VolumeSource> {
  const file = new TiffFile(path);
  let layout: PlaneLayout | null;
  try {
    if (o.series !== undefined || o.level !== undefined) throw new Error(`${path}: --series and --level apply to OME-Zarr stores, not TIFF`);
    checkSamePlanes((i) => `${path} page ${i}`, file.pages);
    layout = layoutFrom(path, file.pages[0], file.pages.length);
    if (layout) {
      const { sizeC, sizeZ, sizeT } = layout;
      if (sizeC * sizeZ * sizeT > file.pages.length) {
        throw new Error(`${path}: ${layout.kind} metadata says ${sizeC} channels × ${sizeZ} slices × ${sizeT} time points, but the file has ${file.pages.length} pages`);
      }
      for (const [flag, n, what] of [["channel", sizeC, "channels"], ["time", sizeT, "time points"]] as const) {
        const pick = o[flag];
        if (pick === undefined && n > 1) throw new Error(`${path}: the ${layout.kind} has ${n} ${what} (${sizeC} channels, ${sizeZ} slices, ${sizeT} time points); choose one with --${flag} 0…${n - 1}`);
        if (pick !== undefined && (!Number.isInteger(pick) || pick < 0 || pick >= n)) throw new Error(`${path}: --${flag} ${pick} does not exist (the file has ${n} ${what}: 0…${n - 1})`);
      }
    } else {
      for (const flag of ["channel", "time"] as const) {
        if (o[flag] !== undefined && o[flag] !== 0) throw new Error(`${path}: --${flag} ${o[flag]} given, but the TIFF has no OME-XML or ImageJ metadata with ${flag === "channel" ? "channels" : "time points"}`);
      }
    }
  } catch (err) {
    file.close();
    throw err;
  }
  const p0 = file.pages[0];
  const c = o.channel ?? 0, t = o.time ?? 0;
  const nz = layout ? layout.sizeZ : file.pages.length;
  const header: VolumeHeader = { dtype: p0.dtype, shape: [nz, p0.height, p0.width], spacingUm: layout?.spacingUm ?? spacingFrom(p0) };
  const pageOf = layout ? (z: number) => layout.pageOf(c, z, t) : (z: number) => z;
  const info: SourceInfo = {
    format: layout?.kind ?? "TIFF", channels: layout?.sizeC ?? 1, timePoints: layout?.sizeT ?? 1, codec: COMPRESSION_NAME[p0.compression] ?? `compression ${p0.compression}`,
    chunks: [1, p0.segHeight, p0.segWidth],
  };
  return new PlaneSource(path, header, (z) => ({ file, page: pageOf(z), done: () => undefined }), () => file.close(), info);
}

const collator = new Intl.Collator("en", { numeric: true });

/** The .tif/.tiff files of a folder in natural order (z2 before z10). */
export function tiffPlaneFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw fsError(dir, err, "folder not found");
  }
  return names.filter((n) => /\.tiff?$/i.test(n) && !n.startsWith(".")).sort(collator.compare);
}

/** Opens a folder of single-page TIFFs, one per z-plane, in natural order; checks that none is missing. */
export async function openTiffFolder(dir: string): Promise<VolumeSource> {
  const names = tiffPlaneFiles(dir);
  if (names.length === 0) throw new Error(`${dir}: no .tif or .tiff files in the folder`);
  // Plane numbers are the last run of digits in each name; a gap means a missing slice.
  const numbers = names.map((n) => /(\d+)(?!.*\d)/.exec(n)?.[1]);
  if (numbers.every((n) => n !== undefined)) {
    for (let i = 1; i < names.length; i++) {
      const prev = Number(numbers[i - 1]), cur = Number(numbers[i]);
      if (cur !== prev + 1) {
        throw new Error(`${dir}: missing slice between ${names[i - 1]} and ${names[i]} (plane numbers ${prev} then ${cur})`);
      }
    }
  }
  const pages: Page[] = names.map((n) => {
    const f = new TiffFile(join(dir, n), 2);
    f.close();
    if (f.pages.length !== 1) throw new Error(`${join(dir, n)}: a z-plane file must hold one page, it holds ${f.pages.length}+`);
    return f.pages[0];
  });
  checkSamePlanes((i) => join(dir, names[i]), pages);
  const p0 = pages[0];
  const header: VolumeHeader = { dtype: p0.dtype, shape: [names.length, p0.height, p0.width], spacingUm: spacingFrom(p0) };
  return new PlaneSource(dir, header, (z) => {
    const file = new TiffFile(join(dir, names[z]), 1);
    return { file, page: 0, done: () => file.close() };
  }, () => undefined);
}

export interface TiffWriteOptions {
  /** "deflate" (default), "lzw" or "none". */
  tiffCompression?: "none" | "deflate" | "lzw";
  /** Force BigTIFF (default: when the uncompressed size comes near 4 GiB). */
  bigtiff?: boolean;
  /** deflate level (default 6). */
  level?: number;
}

interface Entry { tag: number; type: number; values: number[] | Buffer }

/** Writes TIFF pages one after another, linking each IFD from the previous one. */
class TiffWriter {
  private pos: number;
  private linkAt: number;
  private pageIndex = 0;

  constructor(private readonly fd: number, private readonly big: boolean, private readonly h: VolumeHeader, private readonly opts: TiffWriteOptions) {
    const head = Buffer.alloc(big ? 16 : 8);
    head.write("II", 0, "latin1");
    head.writeUInt16LE(big ? 43 : 42, 2);
    if (big) { head.writeUInt16LE(8, 4); head.writeUInt16LE(0, 6); }
    writeSync(fd, head, 0, head.length, 0);
    this.linkAt = big ? 8 : 4;
    this.pos = head.length;
  }

  private write(buf: Uint8Array): number {
    const at = this.pos;
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, at + done);
    this.pos += buf.length;
    if (this.pos % 2) this.write(new Uint8Array(1)); // keep offsets word-aligned
    return at;
  }

  private offset(n: number): Buffer {
    const b = Buffer.alloc(this.big ? 8 : 4);
    if (this.big) b.writeBigUInt64LE(BigInt(n)); else b.writeUInt32LE(n);
    return b;
  }

  writePage(plane: VoxelArray, description: string): void {
    const [, ny, nx] = this.h.shape;
    const size = DTYPES[this.h.dtype].bytes;
    const rowBytes = nx * size;
    const rowsPerStrip = Math.max(1, Math.min(ny, Math.floor((1 << 18) / rowBytes)));
    const comp = this.opts.tiffCompression ?? "deflate";
    const bytes = bytesOf(plane);
    const offsets: number[] = [], counts: number[] = [];
    for (let y = 0; y < ny; y += rowsPerStrip) {
      const raw = bytes.subarray(y * rowBytes, Math.min(ny, y + rowsPerStrip) * rowBytes);
      const enc = comp === "none" ? raw : comp === "lzw" ? lzwEncode(raw) : deflateSync(raw, { level: this.opts.level ?? 6 });
      offsets.push(this.write(enc));
      counts.push(enc.length);
    }
    const [, sy, sx] = this.h.spacingUm;
    const rational = (v: number) => {
      const den = Math.max(1, Math.floor(4294967295 / Math.max(1, v)));
      return [Math.round(v * den), den];
    };
    const longType = this.big ? 16 : 4;
    const entries: Entry[] = [
      { tag: TAG.NewSubfileType, type: 4, values: [0] },
      { tag: TAG.ImageWidth, type: 4, values: [nx] },
      { tag: TAG.ImageLength, type: 4, values: [ny] },
      { tag: TAG.BitsPerSample, type: 3, values: [size * 8] },
      { tag: TAG.Compression, type: 3, values: [COMPRESSION[comp]] },
      { tag: TAG.Photometric, type: 3, values: [1] },
    ];
    if (description) entries.push({ tag: TAG.ImageDescription, type: 2, values: Buffer.from(description + "\0", "latin1") });
    entries.push(
      { tag: TAG.StripOffsets, type: longType, values: offsets },
      { tag: TAG.SamplesPerPixel, type: 3, values: [1] },
      { tag: TAG.RowsPerStrip, type: 4, values: [rowsPerStrip] },
      { tag: TAG.StripByteCounts, type: longType, values: counts },
      { tag: TAG.XResolution, type: 5, values: rational(1 / sx) },
      { tag: TAG.YResolution, type: 5, values: rational(1 / sy) },
      { tag: TAG.PlanarConfig, type: 3, values: [1] },
      { tag: TAG.ResolutionUnit, type: 3, values: [1] },
      { tag: TAG.Software, type: 2, values: Buffer.from("lsmseg\0", "latin1") },
      { tag: TAG.SampleFormat, type: 3, values: [this.h.dtype.startsWith("float") ? 3 : this.h.dtype.startsWith("int") ? 2 : 1] },
    );
    this.writeIfd(entries);
    this.pageIndex++;
  }

  private writeIfd(entries: Entry[]): void {
    const inline = this.big ? 8 : 4;
    const encoded = entries.map((e) => {
      if (Buffer.isBuffer(e.values)) return { e, count: e.values.length, data: e.values };
      const vals = e.values;
      const tsize = TYPE_SIZE[e.type];
      const count = e.type === 5 ? vals.length / 2 : vals.length;
      const data = Buffer.alloc(vals.length * (e.type === 5 ? 4 : tsize));
      vals.forEach((v, i) => {
        if (e.type === 3) data.writeUInt16LE(v, 2 * i);
        else if (e.type === 4 || e.type === 5) data.writeUInt32LE(v, 4 * i);
        else if (e.type === 16) data.writeBigUInt64LE(BigInt(v), 8 * i);
      });
      return { e, count, data };
    });
    const valueAt = encoded.map(({ data }) => (data.length > inline ? this.write(data) : -1));
    const entrySize = this.big ? 20 : 12;
    const ifd = Buffer.alloc((this.big ? 8 : 2) + encoded.length * entrySize + (this.big ? 8 : 4));
    if (this.big) ifd.writeBigUInt64LE(BigInt(encoded.length), 0); else ifd.writeUInt16LE(encoded.length, 0);
    encoded.forEach(({ e, count, data }, i) => {
      const o = (this.big ? 8 : 2) + i * entrySize;
      ifd.writeUInt16LE(e.tag, o);
      ifd.writeUInt16LE(e.type, o + 2);
      if (this.big) ifd.writeBigUInt64LE(BigInt(count), o + 4); else ifd.writeUInt32LE(count, o + 4);
      const vo = o + (this.big ? 12 : 8);
      if (valueAt[i] >= 0) this.offset(valueAt[i]).copy(ifd, vo);
      else data.copy(ifd, vo);
    });
    const at = this.write(ifd);
    writeSync(this.fd, this.offset(at), 0, inline, this.linkAt);
    this.linkAt = at + ifd.length - inline;
  }

  get pages(): number {
    return this.pageIndex;
  }

  get bytesWritten(): number {
    return this.pos;
  }
}

/**
 * An ImageJ hyperstack description, so that Fiji (and tifffile) keep the z-spacing and unit of lsmseg's TIFF
 * output; x and y spacing are the resolution tags (pixels per µm, no TIFF unit), as ImageJ writes them.
 */
function imagejDescription(h: VolumeHeader): string {
  return `ImageJ=1.11a\nimages=${h.shape[0]}\nslices=${h.shape[0]}\nunit=micron\nspacing=${h.spacingUm[0]}\nloop=false\n`;
}

function checkTiffDtype(path: string, h: VolumeHeader): void {
  if (!DTYPES[h.dtype]) throw new Error(`${path}: unsupported dtype ${h.dtype}`);
}

/** The names lsmseg gives the planes of a plane folder (z0000.tif, …): the only entries it replaces there. */
export function isPlaneName(name: string): boolean {
  return /^z\d+\.tif$/.test(name);
}

/** A plane folder output may replace lsmseg's planes only: another TIFF there would become part of the volume. */
export function checkPlaneFolderOutput(path: string): void {
  let names: string[];
  try {
    if (!statSync(path).isDirectory()) throw new OutputExistsError(`${path}: is a file, but the output is a folder of z-planes; choose another name`);
    names = readdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const foreign = names.filter((n) => /\.tiff?$/i.test(n) && !isPlaneName(n));
  if (foreign.length) throw new OutputExistsError(`${path}: holds TIFF files lsmseg did not write (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}); they would become planes of the volume, so choose another output folder`);
}

/** Writes planes into `tmp` as they come and renames to `path` on close. */
class TiffSink implements VolumeSink {
  private planes = 0;
  private fd: number | null = null;
  private writer: TiffWriter | null = null;
  readonly tmp: string;

  constructor(readonly path: string, readonly header: VolumeHeader, private readonly opts: TiffWriteOptions, private readonly folder: boolean) {
    this.tmp = tempPathFor(path);
    if (folder) {
      checkPlaneFolderOutput(path);
      makeDirs(this.tmp);
    } else {
      refuseFolder(path);
      makeDirs(join(this.tmp, ".."));
      this.fd = openSync(this.tmp, "w");
      const bytes = this.header.shape.reduce((a, b) => a * b, 1) * DTYPES[header.dtype].bytes;
      const big = opts.bigtiff ?? bytes > 2 ** 32 - 2 ** 27;
      this.writer = new TiffWriter(this.fd, big, header, opts);
    }
  }

  async writeSlab(data: VoxelArray): Promise<void> {
    try {
      this.writePlanes(data);
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code ? fsError(this.path, err) : err;
    }
  }

  private writePlanes(data: VoxelArray): void {
    const [nz, ny, nx] = this.header.shape;
    for (const view of slabPlanes(this, data, this.planes)) {
      if (this.writer) {
        this.writer.writePage(view, this.planes === 0 ? imagejDescription(this.header) : "");
      } else {
        const name = join(this.tmp, `z${String(this.planes).padStart(Math.max(4, String(nz - 1).length), "0")}.tif`);
        const fd = openSync(name, "w");
        try {
          const plane = { ...this.header, shape: [1, ny, nx] as Vec3 };
          new TiffWriter(fd, false, plane, this.opts).writePage(view, imagejDescription({ ...this.header, shape: [1, ny, nx] }));
        } finally {
          closeSync(fd);
        }
      }
      this.planes++;
    }
  }

  async close(): Promise<void> {
    if (this.planes !== this.header.shape[0]) {
      await this.abort();
      throw new Error(`${this.path}: ${this.planes} of ${this.header.shape[0]} planes were written`);
    }
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    if (this.folder) {
      checkPlaneFolderOutput(this.path);
      swapFolderIn(this.tmp, this.path, isPlaneName);
    } else {
      refuseFolder(this.path);
      renameSync(this.tmp, this.path);
    }
  }

  async abort(): Promise<void> {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Creates a multi-page TIFF (BigTIFF when large or asked), one page per z-plane. */
export async function createTiff(path: string, h: VolumeHeader, opts: TiffWriteOptions = {}): Promise<VolumeSink> {
  checkTiffDtype(path, h);
  return new TiffSink(path, h, opts, false);
}

/** Creates a folder of single-page TIFFs named z0000.tif, z0001.tif, … */
export async function createTiffFolder(path: string, h: VolumeHeader, opts: TiffWriteOptions = {}): Promise<VolumeSink> {
  checkTiffDtype(path, h);
  return new TiffSink(path, h, opts, true);
}

