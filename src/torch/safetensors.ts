// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, __metadata__: {string: string}}, then the raw tensor bytes.
// Written atomically; every inconsistency in a file read gives an Error naming the file.
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomic.ts";
import { type DType } from "./dtype.ts";
import { type Tensor, fromBytes } from "./tensor.ts";

const ST_DTYPE: Record<DType, string> = {
  float64: "F64", float32: "F32", float16: "F16", bfloat16: "BF16", int64: "I64", int32: "I32", int16: "I16", int8: "I8", uint8: "U8", bool: "BOOL",
};
const ST_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const FROM_ST = new Map(Object.entries(ST_DTYPE).map(([k, v]) => [v, k as DType]));

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Writes tensors (in the map's order) and string metadata to `path` atomically. */
export function saveSafetensors(path: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.bytes();
    header[name] = { dtype: ST_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    blobs.push(bytes);
    offset += bytes.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, as the reference writer does
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileAtomic(path, len, json, ...blobs);
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Parses and checks the header; returns it with where the data starts. */
export function readSafetensorsHeader(
  path: string, buf: Buffer = readFileSync(path),
): { entries: Map<string, Entry>; metadata: Record<string, string>; dataStart: number } {
  const fail = (msg: string) => new Error(`${path}: not a valid safetensors file: ${msg}`);
  if (buf.length < 8) throw fail(`the file has ${buf.length} bytes, fewer than the 8-byte header length`);
  const n = Number(buf.readBigUInt64LE(0));
  if (n > buf.length - 8) throw fail(`the header claims ${n} bytes but only ${buf.length - 8} follow (truncated file?)`);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>;
  } catch (err) {
    throw fail(`the header is not JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw fail(`the header is JSON but not an object (${JSON.stringify(parsed).slice(0, 40)})`);
  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  const entries = new Map<string, Entry>();
  let expectedEnd = 0;
  for (const [name, raw] of Object.entries(parsed)) {
    if (name === "__metadata__") continue;
    const e = raw as Entry;
    if (!e || typeof e.dtype !== "string" || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) throw fail(`tensor '${name}' has no dtype/shape/data_offsets`);
    if (!e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw fail(`tensor '${name}' has shape [${e.shape}]; dimensions must be integers >= 0`);
    const size = ST_SIZE[e.dtype];
    if (!size || !FROM_ST.has(e.dtype)) throw fail(`tensor '${name}' has unsupported dtype '${e.dtype}'`);
    const [b, end] = e.data_offsets;
    const numel = e.shape.reduce((a: number, d: number) => a * d, 1);
    if (end - b !== numel * size) throw fail(`tensor '${name}' of shape [${e.shape}] ${e.dtype} needs ${numel * size} bytes, its offsets span ${end - b}`);
    if (b < 0 || end > dataLen) throw fail(`tensor '${name}' ends at byte ${end} of a data section of ${dataLen} bytes (truncated file?)`);
    expectedEnd = Math.max(expectedEnd, end);
    entries.set(name, e);
  }
  if (expectedEnd !== dataLen) throw fail(`the data section has ${dataLen} bytes but the tensors cover ${expectedEnd}`);
  const metadata = (parsed.__metadata__ ?? {}) as Record<string, string>;
  return { entries, metadata, dataStart };
}

/** Reads every tensor of a safetensors file (new tensors, owned by the caller). */
export function loadSafetensors(path: string): SafetensorsFile {
  const buf = readFileSync(path);
  const { entries, metadata, dataStart } = readSafetensorsHeader(path, buf);
  const tensors = new Map<string, Tensor>();
  for (const [name, e] of entries) {
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset + dataStart + e.data_offsets[0], e.data_offsets[1] - e.data_offsets[0]);
    tensors.set(name, fromBytes(bytes, e.shape, FROM_ST.get(e.dtype)!));
  }
  return { tensors, metadata };
}
