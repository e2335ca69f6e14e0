// OME-Zarr and bare Zarr arrays. Reading goes through zarrita (Zarr v2 and v3, sharding_indexed, transpose,
// crc32c) with numcodecs' codecs (blosc with its inner compressors and shuffles, zstd, lz4, gzip, zlib), from
// a folder or over HTTP(S); this file resolves the OME-NGFF layer above the array: OME-Zarr 0.4 (Zarr v2) and
// 0.5 (Zarr v3) multiscales with their scale and translation, the bioformats2raw layout (series groups), a
// pyramid level, a channel or time point of c/t axes. Array metadata is checked here before zarrita sees it, so
// a bad .zarray or zarr.json is refused with its file and field named.
// Writing stays hand-written (see ZarrSink): it streams z-planes into chunk layers and a pyramid at once, which
// zarrita's region-at-a-time `set` would need a full chunk layer per level buffered for anyway.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { totalmem } from "node:os";
import { basename, dirname, join } from "node:path";
import { deflateSync, gzipSync } from "node:zlib";
import FileSystemStore from "@zarrita/storage/fs";
import * as zarr from "zarrita";
import { tempPathFor } from "../util/atomic.ts";
import { slabPlanes, type SourceInfo, type VolumeSink, type VolumeSource } from "./stream.ts";
import { checkExists } from "../util/fserror.ts";
import {
  type Box, type DType, DTYPES, type Vec3, type Volume, type VolumeHeader, type VoxelArray,
  allocVoxels, bytesOf, checkBox, headerOf, voxelCount, voxelsInto,
} from "./volume.ts";

/** Which image of a store to read: a bioformats2raw series, a pyramid level, a channel and a time point. */
export interface ZarrOpenOptions {
  series?: number;
  level?: number;
  channel?: number;
  time?: number;
}

export function isZarrDir(path: string): boolean {
  return [".zarray", ".zgroup", ".zattrs", "zarr.json"].some((f) => existsSync(join(path, f)));
}

export function isUrl(path: string): boolean {
  return /^https?:\/\//i.test(path);
}

type Store = zarr.Readable;
type Json = Record<string, any>;

/** A JSON document of the store, or null when absent; `where` names it in errors. */
async function readJson(store: Store, key: string, where: string): Promise<Json | null> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await store.get(key as zarr.AbsolutePath);
  } catch (err) {
    throw new Error(`${where}: cannot be read (${(err as Error).message})`);
  }
  if (!bytes) return null;
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Json;
  } catch (err) {
    throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
  }
}

/** A node's attributes (v2 .zattrs or v3 zarr.json's attributes), or null when the node has no metadata. */
async function readAttrs(store: Store, node: string, where: string): Promise<Json | null> {
  const v3 = await readJson(store, `${node}/zarr.json`, `${where}/zarr.json`);
  if (v3) return (v3.attributes ?? {}) as Json;
  const v2 = await readJson(store, `${node}/.zattrs`, `${where}/.zattrs`);
  if (v2) return v2;
  const group = await readJson(store, `${node}/.zgroup`, `${where}/.zgroup`);
  return group ? {} : null;
}

const isCount = (n: unknown, min: number) => typeof n === "number" && Number.isInteger(n) && n >= min;

function checkIntegers(v: unknown, min: number, where: string, field: string, rank?: number): number[] {
  if (!Array.isArray(v) || !v.every((n) => isCount(n, min)) || (rank !== undefined && v.length !== rank)) {
    const what = min > 0 ? "positive integers" : "non-negative integers";
    throw new Error(`${where}: ${field} must be an array of ${rank ?? "the array's rank in"} ${what}, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** What zarrita and numcodecs decode, as Zarr v2 compressors and filters and Zarr v3 codecs. */
const V2_CODECS = ["blosc", "zstd", "lz4", "gzip", "zlib"];
const V2_FILTERS = ["shuffle", "delta"];
const V3_CODECS = ["bytes", "transpose", "crc32c", "sharding_indexed", "blosc", "zstd", "gzip", "lz4", "zlib"];
const V2_DTYPE_NAMES: Record<string, string> = { u1: "uint8", i1: "int8", u2: "uint16", i2: "int16", u4: "uint32", i4: "int32", f4: "float32", f8: "float64" };

const ZARRITA_DTYPES: Record<string, DType> = {
  uint8: "uint8", int8: "int8", uint16: "uint16", int16: "int16", uint32: "uint32", int32: "int32", float32: "float32", float64: "float64",
};

/** Checks an array's metadata (v2 .zarray or v3 zarr.json) before zarrita reads it; the errors name the file and field. */
function checkArrayMeta(meta: Json, where: string): void {
  const shape = checkIntegers(meta.shape, 0, where, "shape");
  if (meta.zarr_format === 2) {
    checkIntegers(meta.chunks, 1, where, "chunks", shape.length);
    if (meta.order === "F") throw new Error(`${where}: order "F" (Fortran-ordered chunks) is not supported; lsmseg reads order "C"`);
    if (!/^[<>|][uif][1248]$/.test(String(meta.dtype)) || !ZARRITA_DTYPES[V2_DTYPE_NAMES[String(meta.dtype).slice(1)] ?? ""]) {
      throw new Error(`${where}: dtype ${JSON.stringify(meta.dtype)} is not supported; lsmseg reads ${Object.keys(V2_DTYPE_NAMES).map((d) => `"<${d}"`).join(", ")} (either byte order)`);
    }
    const id = (meta.compressor as Json | null)?.id;
    if (meta.compressor !== null && !V2_CODECS.includes(id)) throw new Error(`${where}: compressor ${JSON.stringify(id)} is not supported; lsmseg reads ${V2_CODECS.join(", ")} or none`);
    for (const f of (Array.isArray(meta.filters) ? meta.filters : []) as Json[]) {
      if (!V2_FILTERS.includes(f?.id)) throw new Error(`${where}: filter ${JSON.stringify(f?.id)} is not supported; lsmseg reads the filters ${V2_FILTERS.join(", ")}`);
    }
    return;
  }
  if (meta.chunk_grid?.name !== "regular") throw new Error(`${where}: chunk_grid.name must be "regular", got ${JSON.stringify(meta.chunk_grid?.name)}`);
  checkIntegers(meta.chunk_grid?.configuration?.chunk_shape, 1, where, "chunk_grid.configuration.chunk_shape", shape.length);
  const codecs = (list: unknown, field: string) => {
    for (const c of (Array.isArray(list) ? list : []) as Json[]) {
      if (!V3_CODECS.includes(c?.name)) throw new Error(`${where}: ${field} ${JSON.stringify(c?.name)} is not supported; lsmseg reads ${V3_CODECS.join(", ")}`);
      if (c.name === "sharding_indexed") {
        checkIntegers(c.configuration?.chunk_shape, 1, where, "codecs[sharding_indexed].configuration.chunk_shape", shape.length);
        codecs(c.configuration?.codecs, "sharding_indexed codec");
      }
    }
  };
  if (!ZARRITA_DTYPES[String(meta.data_type)]) throw new Error(`${where}: data_type ${JSON.stringify(meta.data_type)} is not supported; lsmseg reads ${Object.keys(ZARRITA_DTYPES).join(", ")}`);
  codecs(meta.codecs, "codec");
}

const UNIT_UM: Record<string, number> = { micrometer: 1, micron: 1, nanometer: 1e-3, millimeter: 1e3, centimeter: 1e4, meter: 1e6, angstrom: 1e-4 };

interface Axis { name: string; type?: string; unit?: string }

/** The image a store path resolves to: the array's node, its axes, the level-`level` scale and translation. */
interface Resolved {
  arrayNode: string;
  axes: Axis[] | null;
  scale: number[] | null;
  translation: number[] | null;
  levels: number;
  layout: string;
}

function transformsOf(list: unknown): { scale: number[] | null; translation: number[] | null } {
  const ts = Array.isArray(list) ? (list as Json[]) : [];
  return {
    scale: (ts.find((t) => t?.type === "scale")?.scale as number[] | undefined) ?? null,
    translation: (ts.find((t) => t?.type === "translation")?.translation as number[] | undefined) ?? null,
  };
}

async function resolveImage(store: Store, where: string, o: ZarrOpenOptions): Promise<Resolved> {
  let node = "";
  let attrs = await readAttrs(store, node, where);
  let layout = "Zarr array";
  if (attrs?.["bioformats2raw.layout"] !== undefined) {
    const series = o.series ?? 0;
    const list = ((await readAttrs(store, "/OME", `${where}/OME`))?.series as string[] | undefined) ?? null;
    const name = list ? list[series] : String(series);
    if (!Number.isInteger(series) || series < 0 || name === undefined) {
      throw new Error(`${where}: --series ${series} does not exist (bioformats2raw series ${list ? `0…${list.length - 1}` : "0, 1, …"})`);
    }
    node = `/${name}`;
    attrs = await readAttrs(store, node, `${where}/${name}`);
    if (!attrs) throw new Error(`${where}/${name}: bioformats2raw series ${series} has no Zarr group`);
    layout = `bioformats2raw series ${series}`;
  } else if (o.series !== undefined && o.series !== 0) {
    throw new Error(`${where}: --series applies to a bioformats2raw layout, and this store is not one`);
  }
  const ms = (attrs?.ome?.multiscales ?? attrs?.multiscales)?.[0] as Json | undefined;
  if (!ms) {
    if (o.level !== undefined && o.level !== 0) throw new Error(`${where}: --level ${o.level} needs an OME-Zarr multiscale pyramid, and this is a bare array`);
    return { arrayNode: node, axes: null, scale: null, translation: null, levels: 1, layout };
  }
  const datasets = (Array.isArray(ms.datasets) ? ms.datasets : []) as Json[];
  if (datasets.length === 0) throw new Error(`${where}: OME-Zarr multiscales has no datasets`);
  const level = o.level ?? 0;
  if (!Number.isInteger(level) || level < 0 || level >= datasets.length) {
    throw new Error(`${where}: --level ${level} does not exist (the pyramid has levels 0…${datasets.length - 1})`);
  }
  const ds = datasets[level];
  if (typeof ds.path !== "string") throw new Error(`${where}: multiscales.datasets[${level}].path must be a string`);
  // the dataset's transforms, then the multiscale's own (applied after them, OME-NGFF 0.4 §multiscales)
  const own = transformsOf(ds.coordinateTransformations);
  const all = transformsOf(ms.coordinateTransformations);
  let { scale, translation } = own;
  if (all.scale) {
    scale = (scale ?? all.scale.map(() => 1)).map((s, k) => s * all.scale![k]);
    translation = (translation ?? all.scale.map(() => 0)).map((t, k) => t * all.scale![k]);
  }
  if (all.translation) translation = (translation ?? all.translation.map(() => 0)).map((t, k) => t + all.translation![k]);
  const axes = Array.isArray(ms.axes)
    ? (ms.axes as Array<Axis | string>).map((a) => (typeof a === "string" ? { name: a } : a)) // 0.3 names axes by string
    : null;
  const version = attrs?.ome?.version ?? ms.version ?? "";
  return {
    arrayNode: `${node}/${ds.path}`.replace(/\/+$/, ""), axes, scale, translation, levels: datasets.length,
    layout: `${layout === "Zarr array" ? "" : `${layout}, `}OME-Zarr ${version}`.trim(),
  };
}


/** A human name for an array's codecs, for inspect. */
function codecName(meta: Json): string {
  if (meta.zarr_format === 2) {
    const c = meta.compressor as Json | null;
    const filters = Array.isArray(meta.filters) && meta.filters.length ? `${meta.filters.map((f: Json) => f.id).join("+")}+` : "";
    if (!c) return `${filters}none`;
    return filters + (c.id === "blosc" ? `blosc(${c.cname}, shuffle ${c.shuffle})` : String(c.id));
  }
  const names = ((meta.codecs ?? []) as Json[]).map((c) => (c.name === "sharding_indexed" ? `sharding_indexed[${((c.configuration?.codecs ?? []) as Json[]).map((i) => i.name).join("+")}]` : String(c.name)));
  return names.join("+");
}

/**
 * fetch for zarrita's FetchStore that also serves servers without Range support (python's http.server, some
 * proxies): a 200 answer to a ranged GET is cut to the range asked for, as a 206 would have been.
 */
async function fetchRange(request: Request): Promise<Response> {
  const res = await fetch(request);
  const range = request.headers.get("range");
  const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range) : null;
  if (!m || res.status !== 200) return res;
  const body = new Uint8Array(await res.arrayBuffer());
  const start = m[1] === "" ? Math.max(0, body.length - Number(m[2])) : Number(m[1]);
  const end = m[1] === "" || m[2] === "" ? body.length : Math.min(body.length, Number(m[2]) + 1);
  return new Response(body.slice(start, end), { status: 206 });
}

/** Opens one Zarr store: a folder or an http(s) URL. */
function storeOf(path: string): Store {
  if (isUrl(path)) return new zarr.FetchStore(path.replace(/\/+$/, ""), { fetch: fetchRange });
  checkExists(path, "not found");
  return new FileSystemStore(path);
}

class ZarrSource implements VolumeSource {
  readonly header: VolumeHeader;
  readonly info: SourceInfo;
  /** The index of each leading (non-spatial) axis: the chosen channel or time point, else 0. */
  private readonly lead: number[];
  /** A chunk's name in messages: its file or URL, or its grid index inside a shard. */
  private readonly chunkKey: (idx: number[]) => string;

  constructor(readonly path: string, private readonly arr: zarr.Array<zarr.DataType, Store>, meta: Json, r: Resolved, o: ZarrOpenOptions) {
    const where = `${path}${r.arrayNode}`;
    const shape = arr.shape;
    const dtype = ZARRITA_DTYPES[arr.dtype];
    if (!dtype) throw new Error(`${where}: data type ${arr.dtype} is not supported (lsmseg reads ${Object.keys(ZARRITA_DTYPES).join(", ")})`);
    if (shape.length < 3) throw new Error(`${where}: array shape ${shape.join("×")} has fewer than 3 axes (z, y, x)`);
    const axes: Axis[] = r.axes ?? (arr.dimensionNames ?? shape.map(() => "")).map((name) => ({ name }));
    if (axes.length !== shape.length) throw new Error(`${path}: OME-Zarr axes ${axes.map((a) => a.name).join(",")} do not match the array's ${shape.length} dimensions`);
    const lead: number[] = [];
    let channels = 1;
    for (let k = 0; k < shape.length - 3; k++) {
      const a = axes[k];
      const kind = a.type === "channel" || a.name === "c" ? "channel" : a.type === "time" || a.name === "t" ? "time" : "other";
      const pick = kind === "channel" ? o.channel : kind === "time" ? o.time : undefined;
      if (kind === "channel") channels = shape[k];
      if (pick !== undefined) {
        if (!Number.isInteger(pick) || pick < 0 || pick >= shape[k]) throw new Error(`${where}: --${kind} ${pick} does not exist (axis ${a.name} has ${shape[k]}: 0…${shape[k] - 1})`);
        lead.push(pick);
      } else if (shape[k] === 1) {
        lead.push(0);
      } else if (kind === "other") {
        throw new Error(`${where}: array shape ${shape.join("×")} is not a 3D volume (axis ${k}${a.name ? ` '${a.name}'` : ""} has size ${shape[k]}; leading axes must have size 1, or be named c or t)`);
      } else {
        throw new Error(`${where}: the image has ${shape[k]} ${kind === "channel" ? "channels" : "time points"} (axis ${a.name}); choose one with --${kind} 0…${shape[k] - 1}`);
      }
    }
    if (o.channel !== undefined && !axes.slice(0, -3).some((a) => a.type === "channel" || a.name === "c")) throw new Error(`${where}: --channel given, but the image has no channel axis`);
    if (o.time !== undefined && !axes.slice(0, -3).some((a) => a.type === "time" || a.name === "t")) throw new Error(`${where}: --time given, but the image has no time axis`);
    this.lead = lead;
    const sharded = ((meta.codecs ?? []) as Json[]).some((c) => c.name === "sharding_indexed");
    const enc = meta.chunk_key_encoding as Json | undefined;
    const sep: string = meta.zarr_format === 2 ? (meta.dimension_separator === "/" ? "/" : ".") : (enc?.configuration?.separator ?? (enc?.name === "v2" ? "." : "/"));
    const prefix = meta.zarr_format === 3 && enc?.name !== "v2" ? ["c"] : [];
    this.chunkKey = sharded ? (idx) => `${where}: inner chunk ${idx.join(",")}` : (idx) => `${where}/${[...prefix, ...idx].join(sep)}`;
    const spatial = axes.slice(-3);
    const toUm = spatial.map((a) => UNIT_UM[a.unit ?? "micrometer"] ?? 1);
    const last3 = (v: number[] | null, fallback: number) => (v && v.length >= 3 ? v.slice(-3) : [fallback, fallback, fallback]);
    const spacingUm = last3(r.scale, 1).map((s, k) => s * toUm[k]) as Vec3;
    this.header = { dtype, shape: shape.slice(-3) as Vec3, spacingUm };
    if (r.translation) this.header.originUm = last3(r.translation, 0).map((t, k) => t * toUm[k]) as Vec3;
    this.info = {
      format: r.layout || "Zarr array", zarrVersion: meta.zarr_format, axes: axes.map((a) => a.name || "?"), fullShape: [...shape],
      chunks: [...arr.chunks], codec: codecName(meta), levels: r.levels, channels,
    };
  }

  async readRegion(box: Box, into?: Uint8Array): Promise<Volume> {
    checkBox(this.path, this.header.shape, box);
    const bytes = voxelCount(box.size) * DTYPES[this.header.dtype].bytes;
    if (bytes > totalmem()) {
      throw new Error(`${this.path}: a region of ${box.size.join("×")} ${this.header.dtype} voxels needs ${(bytes / 2 ** 30).toFixed(1)} GiB, more than this machine's ${(totalmem() / 2 ** 30).toFixed(1)} GiB of memory (read it in smaller regions)`);
    }
    // every chunk the box touches, fetched (or read) concurrently, decoded by zarrita's codec pipeline
    const chunks = this.arr.chunks.slice(-3);
    const ranges = box.start.map((s, a) => [Math.floor(s / chunks[a]), Math.floor((s + box.size[a] - 1) / chunks[a])]);
    const coords: number[][] = [];
    for (let iz = ranges[0][0]; iz <= ranges[0][1]; iz++) {
      for (let iy = ranges[1][0]; iy <= ranges[1][1]; iy++) for (let ix = ranges[2][0]; ix <= ranges[2][1]; ix++) coords.push([iz, iy, ix]);
    }
    const out = voxelsInto(this.header.dtype, voxelCount(box.size), into);
    const leadChunks = this.lead.map((i, k) => Math.floor(i / this.arr.chunks[k]));
    const leadWithin = this.lead.map((i, k) => i % this.arr.chunks[k]);
    let next = 0;
    const worker = async () => {
      while (next < coords.length) {
        const c = coords[next++];
        const key = this.chunkKey([...leadChunks, ...c]);
        let chunk;
        try {
          chunk = await this.arr.getChunk([...leadChunks, ...c]);
        } catch (err) {
          const e = err as Error & { cause?: Error };
          throw new Error(`${key}: chunk does not decode (${e.message}${e.cause ? `: ${e.cause.message}` : ""})`);
        }
        const want = voxelCount(this.arr.chunks);
        if (chunk.data.length !== want) {
          throw new Error(`${key}: chunk holds ${chunk.data.length * DTYPES[this.header.dtype].bytes} bytes, its shape ${this.arr.chunks.join("×")} of ${this.header.dtype} needs ${want * DTYPES[this.header.dtype].bytes}`);
        }
        this.copyOverlap(chunk.data as VoxelArray, chunk.stride, leadWithin, c.map((i, a) => i * chunks[a]), box, out);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_CHUNKS, coords.length) }, worker));
    return { ...headerOf(this.header, [...box.size]), data: out };
  }

  /** Copies the overlap of `box` and the chunk whose first voxel is `origin` (z, y, x) into `out`, whatever the chunk's strides. */
  private copyOverlap(src: VoxelArray, stride: number[], leadWithin: number[], origin: number[], box: Box, out: VoxelArray): void {
    const base = leadWithin.reduce((acc, i, k) => acc + i * stride[k], 0);
    const [sz, sy, sx] = stride.slice(-3);
    const [z0, y0, x0] = box.start;
    const [, dy, dx] = box.size;
    const lo = origin.map((o, a) => Math.max(o, box.start[a]));
    const hi = origin.map((o, a) => Math.min(o + this.arr.chunks[this.arr.chunks.length - 3 + a], box.start[a] + box.size[a]));
    for (let z = lo[0]; z < hi[0]; z++) {
      for (let y = lo[1]; y < hi[1]; y++) {
        const to = ((z - z0) * dy + (y - y0)) * dx - x0;
        const from = base + (z - origin[0]) * sz + (y - origin[1]) * sy - origin[2] * sx;
        if (sx === 1) out.set(src.subarray(from + lo[2], from + hi[2]), to + lo[2]);
        else for (let x = lo[2]; x < hi[2]; x++) out[to + x] = src[from + x * sx]; // a transposed chunk (v3 transpose codec)
      }
    }
  }

  async close(): Promise<void> {}
}

/** Chunk reads in flight at once: enough to hide HTTP latency, few enough to bound memory. */
const CONCURRENT_CHUNKS = 16;

/**
 * Opens an OME-Zarr image (level 0 unless `level`), a bioformats2raw store (series 0 unless `series`), or a bare
 * Zarr v2/v3 array, from a folder or an http(s) URL. Region reads fetch only the chunks (or shard parts) they touch.
 */
export async function openZarr(path: string, o: ZarrOpenOptions = {}): Promise<VolumeSource> {
  const store = storeOf(path);
  const where = path.replace(/\/+$/, "");
  const r = await resolveImage(store, where, o);
  const metaWhere = (f: string) => `${where}${r.arrayNode}/${f}`;
  const meta = (await readJson(store, `${r.arrayNode}/zarr.json`, metaWhere("zarr.json"))) ?? (await readJson(store, `${r.arrayNode}/.zarray`, metaWhere(".zarray")));
  if (!meta || (meta.zarr_format === 3 && meta.node_type !== "array")) {
    throw new Error(`${where}${r.arrayNode}: not a Zarr array (no .zarray, no zarr.json of an array${r.arrayNode ? "" : ", no OME-Zarr multiscales"})`);
  }
  if (meta.zarr_format !== 3) meta.zarr_format = 2;
  checkArrayMeta(meta, metaWhere(meta.zarr_format === 3 ? "zarr.json" : ".zarray"));
  let arr;
  try {
    arr = await zarr.open(zarr.root(store).resolve(r.arrayNode || "/"), { kind: "array" });
  } catch (err) {
    throw new Error(`${where}${r.arrayNode}: not a readable Zarr array (${(err as Error).message})`);
  }
  return new ZarrSource(path, arr, meta, r, o);
}

export type ZarrCodec = "none" | "gzip" | "zlib" | "blosc" | "zstd";
export const ZARR_CODECS: readonly ZarrCodec[] = ["blosc", "zstd", "zlib", "gzip", "none"];

export interface ZarrWriteOptions {
  /** 2 for OME-Zarr 0.4 (default), 3 for OME-Zarr 0.5. */
  zarrVersion?: 2 | 3;
  /** Chunk shape z, y, x (default 64³, clipped to the shape). */
  chunks?: Vec3;
  /** Pyramid levels including full resolution (default: halve until every axis fits one chunk, at most 6). */
  levels?: number;
  /** Chunk compression (default gzip for v3, zlib for v2; blosc is lz4 with byte shuffle, zarr-python's default). */
  zarrCompression?: ZarrCodec;
  level?: number;
  /**
   * Write the volume as an OME-NGFF image-label (a segmentation): an integer pyramid downsampled by nearest
   * neighbour, with "image-label" metadata. With `labelImage`, `path` becomes that image's OME-Zarr and the
   * label its `labels/<labelName>` group, as napari and the OME-NGFF spec expect.
   */
  labelName?: string;
  labelImage?: Volume;
}

type Encoder = (raw: Uint8Array) => Promise<Uint8Array>;

/** The chunk encoder of a codec; blosc and zstd through numcodecs (WASM), gzip and zlib through node's zlib. */
async function encoderOf(codec: ZarrCodec, level: number, typesize: number): Promise<Encoder> {
  if (codec === "none") return async (raw) => raw;
  if (codec === "gzip") return async (raw) => gzipSync(raw, { level });
  if (codec === "zlib") return async (raw) => deflateSync(raw, { level });
  if (codec === "zstd") {
    const c = (await import("numcodecs/zstd")).default.fromConfig({ level: Math.max(1, level) });
    return (raw) => c.encode(raw);
  }
  const c = (await import("numcodecs/blosc")).default.fromConfig({ cname: "lz4", clevel: Math.max(1, Math.min(9, level)), shuffle: typesize > 1 ? 1 : 0, blocksize: 0 });
  return (raw) => c.encode(raw);
}

function codecMetadata(codec: ZarrCodec, level: number, typesize: number, version: 2 | 3): Json | null {
  const blosc = { cname: "lz4", clevel: Math.max(1, Math.min(9, level)), blocksize: 0 };
  if (version === 2) {
    if (codec === "none") return null;
    if (codec === "blosc") return { id: "blosc", ...blosc, shuffle: typesize > 1 ? 1 : 0 };
    return { id: codec, level: codec === "zstd" ? Math.max(1, level) : level };
  }
  if (codec === "none") return null;
  if (codec === "blosc") return { name: "blosc", configuration: { ...blosc, shuffle: typesize > 1 ? "shuffle" : "noshuffle", typesize } };
  if (codec === "zstd") return { name: "zstd", configuration: { level: Math.max(1, level), checksum: false } };
  if (codec === "gzip") return { name: "gzip", configuration: { level } };
  throw new Error(`Zarr v3 has no '${codec}' codec; use blosc, zstd, gzip or none`);
}

/** One pyramid level being written: planes collect until a layer of chunks is full. */
class LevelWriter {
  private pending: VoxelArray[] = [];
  private layer = 0;
  private pair: VoxelArray | null = null;
  next: LevelWriter | null = null;

  constructor(
    readonly dir: string,
    readonly shape: Vec3,
    readonly chunks: Vec3,
    private readonly dtype: DType,
    private readonly encode: Encoder,
    private readonly codecMeta: Json | null,
    private readonly version: 2 | 3,
    private readonly nearest: boolean,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  async addPlane(plane: VoxelArray): Promise<void> {
    this.pending.push(plane);
    if (this.pending.length === this.chunks[0]) await this.flushLayer();
    if (this.next) {
      if (!this.pair) this.pair = plane;
      else {
        await this.next.addPlane(downsamplePlanes(this.pair, plane, this.shape, this.next.shape, this.dtype, this.nearest));
        this.pair = null;
      }
    }
  }

  async finish(): Promise<void> {
    if (this.pending.length) await this.flushLayer();
    if (this.next) {
      if (this.pair) await this.next.addPlane(downsamplePlanes(this.pair, this.pair, this.shape, this.next.shape, this.dtype, this.nearest));
      this.pair = null;
      await this.next.finish();
    }
  }

  private async flushLayer(): Promise<void> {
    const [, ny, nx] = this.shape;
    const [cz, cy, cx] = this.chunks;
    const chunk = allocVoxels(this.dtype, cz * cy * cx);
    for (let iy = 0; iy * cy < ny; iy++) {
      for (let ix = 0; ix * cx < nx; ix++) {
        chunk.fill(0);
        const yb = Math.min(cy, ny - iy * cy), xb = Math.min(cx, nx - ix * cx);
        this.pending.forEach((plane, z) => {
          for (let y = 0; y < yb; y++) {
            const from = (iy * cy + y) * nx + ix * cx;
            chunk.set(plane.subarray(from, from + xb), (z * cy + y) * cx);
          }
        });
        const enc = await this.encode(bytesOf(chunk));
        const key = this.version === 2 ? `${this.layer}/${iy}/${ix}` : `c/${this.layer}/${iy}/${ix}`;
        const file = join(this.dir, key);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, enc);
      }
    }
    this.pending = [];
    this.layer++;
  }

  metadata(): Record<string, unknown> {
    const dtypeV2 = { uint8: "|u1", int8: "|i1", uint16: "<u2", int16: "<i2", uint32: "<u4", int32: "<i4", float32: "<f4", float64: "<f8" }[this.dtype];
    if (this.version === 2) {
      return {
        zarr_format: 2, shape: this.shape, chunks: this.chunks, dtype: dtypeV2, compressor: this.codecMeta,
        fill_value: 0, order: "C", filters: null, dimension_separator: "/",
      };
    }
    return {
      zarr_format: 3, node_type: "array", shape: this.shape, data_type: this.dtype,
      chunk_grid: { name: "regular", configuration: { chunk_shape: this.chunks } },
      chunk_key_encoding: { name: "default", configuration: { separator: "/" } },
      fill_value: 0,
      codecs: [{ name: "bytes", configuration: { endian: "little" } }, ...(this.codecMeta ? [this.codecMeta] : [])],
      dimension_names: ["z", "y", "x"], attributes: {},
    };
  }
}

/**
 * Two planes (shape `from`) halved into one plane of shape `to`: the 2×2×2 mean (odd edges average what
 * exists), or for labels the nearest neighbour (the voxel at the even corner), which keeps label values.
 */
function downsamplePlanes(a: VoxelArray, b: VoxelArray, from: Vec3, to: Vec3, dtype: DType, nearest: boolean): VoxelArray {
  const [, ny, nx] = from;
  const [, my, mx] = to;
  const out = allocVoxels(dtype, my * mx);
  if (nearest) {
    for (let y = 0; y < my; y++) for (let x = 0; x < mx; x++) out[y * mx + x] = a[2 * y * nx + 2 * x];
    return out;
  }
  const round = !dtype.startsWith("float");
  const same = a === b;
  for (let y = 0; y < my; y++) {
    const ya = 2 * y, yb = Math.min(2 * y + 1, ny - 1);
    for (let x = 0; x < mx; x++) {
      const xa = 2 * x, xb = Math.min(2 * x + 1, nx - 1);
      let s = a[ya * nx + xa] + a[ya * nx + xb] + a[yb * nx + xa] + a[yb * nx + xb];
      s += same ? s : b[ya * nx + xa] + b[ya * nx + xb] + b[yb * nx + xa] + b[yb * nx + xb];
      out[y * mx + x] = round ? Math.round(s / 8) : s / 8;
    }
  }
  return out;
}

/** The OME-NGFF multiscale of a pyramid: level k is 2^k coarser, its voxel centres shifted by (2^k − 1)/2 voxels. */
function multiscaleOf(h: VolumeHeader, levels: number, version: 2 | 3, name: string, nearest: boolean): Json {
  const origin = h.originUm ?? [0, 0, 0];
  return {
    ...(version === 2 ? { version: "0.4" } : {}),
    name,
    axes: ["z", "y", "x"].map((n) => ({ name: n, type: "space", unit: "micrometer" })),
    datasets: Array.from({ length: levels }, (_, k) => {
      const f = 2 ** k;
      return {
        path: String(k),
        coordinateTransformations: [
          { type: "scale", scale: h.spacingUm.map((s) => s * f) },
          // nearest takes the even corner voxel: its centre is the level-0 voxel's, no half-voxel shift
          { type: "translation", translation: h.spacingUm.map((s, a) => origin[a] + (nearest ? 0 : ((f - 1) / 2) * s)) },
        ],
      };
    }),
    type: nearest ? "nearest" : "mean",
  };
}

/** Writes a group's attributes (OME-NGFF `ome` keys) as Zarr v2 .zgroup/.zattrs or a v3 zarr.json. */
function writeGroup(dir: string, version: 2 | 3, ome: Json): void {
  mkdirSync(dir, { recursive: true });
  if (version === 2) {
    writeFileSync(join(dir, ".zgroup"), JSON.stringify({ zarr_format: 2 }));
    writeFileSync(join(dir, ".zattrs"), JSON.stringify(ome, null, 2));
  } else {
    writeFileSync(join(dir, "zarr.json"), JSON.stringify({ zarr_format: 3, node_type: "group", attributes: { ome: { version: "0.5", ...ome } } }, null, 2));
  }
}

class ZarrSink implements VolumeSink {
  private readonly tmp: string;
  private readonly levels: LevelWriter[] = [];
  private planes = 0;

  /** `tmp`: where to write (renamed to `path` on close); `labelDir`: a label group's folder under it. */
  private constructor(
    readonly path: string, readonly header: VolumeHeader, private readonly opts: ZarrWriteOptions, tmp: string, private readonly dir: string,
  ) {
    this.tmp = tmp;
  }

  static async create(path: string, header: VolumeHeader, opts: ZarrWriteOptions, tmp = tempPathFor(path), dir = tmp): Promise<ZarrSink> {
    const sink = new ZarrSink(path, header, opts, tmp, dir);
    const version = opts.zarrVersion ?? 2;
    const codec = opts.zarrCompression ?? (version === 3 ? "gzip" : "zlib");
    const typesize = DTYPES[header.dtype].bytes;
    const level = opts.level ?? (codec === "zstd" || codec === "blosc" ? 3 : 1);
    const meta = codecMetadata(codec, level, typesize, version);
    const encode = await encoderOf(codec, level, typesize);
    const nearest = opts.labelName !== undefined;
    if (nearest && header.dtype.startsWith("float")) throw new Error(`${path}: an image-label must have an integer dtype, got ${header.dtype}`);
    const chunks = (opts.chunks ?? [64, 64, 64]).map((c, a) => Math.max(1, Math.min(c, header.shape[a]))) as Vec3;
    let shape: Vec3 = [...header.shape];
    const maxLevels = opts.levels ?? 6;
    for (let k = 0; k < maxLevels; k++) {
      const levelChunks = chunks.map((c, a) => Math.min(c, shape[a])) as Vec3;
      const lw = new LevelWriter(join(dir, String(k)), shape, levelChunks, header.dtype, encode, meta, version, nearest);
      if (k > 0) sink.levels[k - 1].next = lw;
      sink.levels.push(lw);
      if (opts.levels === undefined && shape.every((n, a) => n <= chunks[a])) break;
      shape = shape.map((n) => Math.max(1, Math.ceil(n / 2))) as Vec3;
    }
    return sink;
  }

  async writeSlab(data: VoxelArray): Promise<void> {
    for (const plane of slabPlanes(this, data, this.planes)) {
      await this.levels[0].addPlane(plane.slice()); // kept until its chunk layer is full: a copy
      this.planes++;
    }
  }

  /** Writes the pyramid and metadata into the temporary folder, without renaming. */
  async finish(): Promise<void> {
    if (this.planes !== this.header.shape[0]) {
      await this.abort();
      throw new Error(`${this.path}: ${this.planes} of ${this.header.shape[0]} planes were written`);
    }
    await this.levels[0].finish();
    const version = this.opts.zarrVersion ?? 2;
    for (const lw of this.levels) writeFileSync(join(lw.dir, version === 2 ? ".zarray" : "zarr.json"), JSON.stringify(lw.metadata(), null, 2));
    const label = this.opts.labelName;
    const ms = multiscaleOf(this.header, this.levels.length, version, label ?? "image", label !== undefined);
    const ome: Json = { multiscales: [ms] };
    if (label !== undefined) {
      // OME-NGFF image-label: colours for label 1 (the predicted structure); source points at the image group
      ome["image-label"] = {
        ...(version === 2 ? { version: "0.4" } : {}),
        colors: [{ "label-value": 1, rgba: [255, 64, 64, 255] }],
        // under an image's labels/: written beside its image (ImageWithLabelSink), or into an existing one
        ...(this.dir !== this.tmp || labelHostOf(this.path) ? { source: { image: "../../" } } : {}),
      };
    }
    writeGroup(this.dir, version, ome);
  }

  async close(): Promise<void> {
    await this.finish();
    rmSync(this.path, { recursive: true, force: true });
    renameSync(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** A sink that writes `labelImage` as the OME-Zarr image at `path` and the streamed volume as its labels/<name>. */
class ImageWithLabelSink implements VolumeSink {
  constructor(readonly path: string, readonly header: VolumeHeader, private readonly label: ZarrSink, private readonly tmp: string,
    private readonly name: string, private readonly version: 2 | 3) {}

  writeSlab(data: VoxelArray): Promise<void> {
    return this.label.writeSlab(data);
  }

  async close(): Promise<void> {
    await this.label.finish();
    writeGroup(join(this.tmp, "labels"), this.version, { labels: [this.name] });
    rmSync(this.path, { recursive: true, force: true });
    renameSync(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/**
 * The OME-Zarr image that `path` would be a label of: `IMAGE/labels/NAME` with IMAGE an existing Zarr group, and its
 * Zarr version (3 when it has a zarr.json).
 */
export function labelHostOf(path: string): { image: string; labels: string; name: string; version: 2 | 3 } | null {
  const trimmed = path.replace(/\/+$/, "");
  const labels = dirname(trimmed), image = dirname(labels);
  if (basename(labels) !== "labels" || labels === image || !isZarrDir(image)) return null;
  return { image, labels, name: basename(trimmed), version: existsSync(join(image, "zarr.json")) ? 3 : 2 };
}

/** Adds `name` to the labels group's list (OME-NGFF "labels"), written under a temporary name and renamed. */
function registerLabel(labels: string, name: string, version: 2 | 3): void {
  const file = join(labels, version === 3 ? "zarr.json" : ".zattrs");
  let doc: Json = {};
  if (existsSync(file)) {
    try {
      doc = JSON.parse(readFileSync(file, "utf8")) as Json;
    } catch (e) {
      throw new Error(`${file}: not JSON (${(e as Error).message}); the label was written but is not listed`);
    }
  }
  const attrs: Json = version === 3 ? ((doc.attributes ??= {}).ome ??= { version: "0.5" }) : doc;
  const list: string[] = Array.isArray(attrs.labels) ? attrs.labels : [];
  if (!list.includes(name)) list.push(name);
  attrs.labels = list;
  if (version === 3) Object.assign(doc, { zarr_format: 3, node_type: "group" });
  else if (!existsSync(join(labels, ".zgroup"))) writeFileSync(join(labels, ".zgroup"), JSON.stringify({ zarr_format: 2 }));
  const tmp = tempPathFor(file);
  writeFileSync(tmp, JSON.stringify(doc, null, 2));
  renameSync(tmp, file);
}

/** A label streamed into labels/NAME of an existing OME-Zarr image, listed in its labels group once complete. */
class LabelInImageSink implements VolumeSink {
  constructor(readonly path: string, readonly header: VolumeHeader, private readonly label: ZarrSink,
    private readonly host: NonNullable<ReturnType<typeof labelHostOf>>) {}

  writeSlab(data: VoxelArray): Promise<void> {
    return this.label.writeSlab(data);
  }

  async close(): Promise<void> {
    await this.label.close();
    registerLabel(this.host.labels, this.host.name, this.host.version);
  }

  abort(): Promise<void> {
    return this.label.abort();
  }
}

/**
 * Creates an OME-Zarr image with a multiscale pyramid (0.4/Zarr v2 by default, 0.5/Zarr v3 with zarrVersion 3).
 * A path `IMAGE/labels/NAME` inside an existing OME-Zarr image writes an image-label there, in the image's Zarr
 * version, checked against the image's shape and listed in IMAGE/labels (as napari and the OME-NGFF spec expect).
 */
export async function createZarr(path: string, h: VolumeHeader, opts: ZarrWriteOptions = {}): Promise<VolumeSink> {
  const image = opts.labelImage;
  const host = image ? null : labelHostOf(path);
  if (host) {
    const hostImage = await openZarr(host.image); // its metadata only, checked as any image's
    const shape = hostImage.header.shape;
    await hostImage.close();
    if (shape.join() !== h.shape.join()) {
      throw new Error(`${path}: a label of ${h.shape.join("×")} voxels cannot go into ${host.image}, whose image is ${shape.join("×")}`);
    }
    mkdirSync(host.labels, { recursive: true });
    return new LabelInImageSink(path, h, await ZarrSink.create(path, h, { ...opts, labelName: host.name, zarrVersion: host.version }), host);
  }
  if (!image) return ZarrSink.create(path, h, opts);
  const name = opts.labelName ?? "mask";
  if (image.shape.join() !== h.shape.join()) throw new Error(`${path}: label shape ${h.shape.join("×")} does not match its image ${image.shape.join("×")}`);
  const tmp = tempPathFor(path);
  const img = await ZarrSink.create(path, image, { ...opts, labelName: undefined, labelImage: undefined }, tmp);
  try {
    const plane = image.shape[1] * image.shape[2];
    for (let z0 = 0; z0 < image.shape[0]; z0 += 64) await img.writeSlab(image.data.subarray(z0 * plane, Math.min(image.shape[0], z0 + 64) * plane));
    await img.finish();
    const label = await ZarrSink.create(path, { ...image, dtype: h.dtype }, { ...opts, labelName: name, labelImage: undefined }, tmp, join(tmp, "labels", name));
    return new ImageWithLabelSink(path, h, label, tmp, name, opts.zarrVersion ?? 2);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
