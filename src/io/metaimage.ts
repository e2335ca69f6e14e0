// MetaImage (.mha with the voxels after the header, .mhd with a separate data file), compressed (zlib) or not:
// the challenge's test inputs and required outputs. Key names after ITK's MetaIO. MetaImage has no unit; lsmseg
// reads and writes its spacing and offset as micrometres.
import { realpathSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import { checkIsFile, fsError, fsProblem } from "../util/fserror.ts";
import { type DType, type Vec3, type VolumeHeader } from "./volume.ts";
import { RawSink, RawSource, type VolumeSink } from "./stream.ts";

const MET_TO_DTYPE: Record<string, DType> = {
  MET_UCHAR: "uint8", MET_CHAR: "int8", MET_USHORT: "uint16", MET_SHORT: "int16",
  MET_UINT: "uint32", MET_INT: "int32", MET_FLOAT: "float32", MET_DOUBLE: "float64",
};
const DTYPE_TO_MET = Object.fromEntries(Object.entries(MET_TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;

/** The first 64 KiB of `path`: where a MetaImage header ends. */
async function readHead(path: string): Promise<Buffer> {
  let head: Buffer;
  checkIsFile(path, "MetaImage file");
  try {
    const fd = await open(path, "r");
    try {
      head = Buffer.alloc(65536);
      head = head.subarray(0, (await fd.read(head, 0, head.length, 0)).bytesRead);
    } finally {
      await fd.close();
    }
  } catch (err) {
    throw fsError(path, err);
  }
  return head;
}

/** The header's `key = value` lines up to ElementDataFile (the last), and the byte after that line. */
function headerFields(path: string, head: Buffer): { fields: Map<string, string>; dataOffset: number } {
  const fields = new Map<string, string>();
  let dataOffset = -1;
  let pos = 0;
  while (pos < head.length) {
    const nl = head.indexOf(10, pos);
    if (nl < 0) break;
    const line = head.toString("latin1", pos, nl).replace(/\r$/, "");
    pos = nl + 1;
    const eq = line.indexOf("=");
    if (eq < 0) {
      if (line.trim() === "") continue;
      throw new Error(`${path}: MetaImage header line '${line.slice(0, 60)}' has no '='`);
    }
    const key = line.slice(0, eq).trim();
    fields.set(key, line.slice(eq + 1).trim());
    if (key === "ElementDataFile") {
      dataOffset = pos;
      break;
    }
  }
  if (dataOffset < 0) throw new Error(`${path}: not a MetaImage file (no ElementDataFile line in its header)`);
  return { fields, dataOffset };
}

/** The volume header the fields describe (MetaIO's x, y, z order turned into z, y, x). */
function headerOf(path: string, fields: Map<string, string>): VolumeHeader {
  const get = (key: string) => fields.get(key);
  const numbers = (key: string, n: number): number[] | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const xs = v.split(/\s+/).map(Number);
    if (xs.length !== n || xs.some((x) => !Number.isFinite(x))) throw new Error(`${path}: ${key} is '${v}', expected ${n} numbers`);
    return xs;
  };
  const ndims = Number(get("NDims"));
  if (ndims !== 2 && ndims !== 3) throw new Error(`${path}: NDims is '${get("NDims")}', expected 2 or 3`);
  const dims = numbers("DimSize", ndims);
  if (!dims) throw new Error(`${path}: DimSize is missing`);
  if (dims.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`${path}: DimSize '${get("DimSize")}' must be positive integers`);
  const met = get("ElementType") ?? "";
  const fileDtype = MET_TO_DTYPE[met];
  if (!fileDtype) throw new Error(`${path}: unsupported ElementType '${met}'; lsmseg reads ${Object.keys(MET_TO_DTYPE).join(", ")}`);
  const channels = Number(get("ElementNumberOfChannels") ?? 1);
  if (channels !== 1) throw new Error(`${path}: ElementNumberOfChannels is ${channels}; only single-channel images are supported`);
  const pad = (xs: number[], fill: number) => (xs.length === 3 ? xs : [...xs, fill]);
  const spacing = pad(numbers("ElementSpacing", ndims) ?? numbers("ElementSize", ndims) ?? Array(ndims).fill(1), 1);
  const offset = pad(numbers("Offset", ndims) ?? numbers("Position", ndims) ?? numbers("Origin", ndims) ?? Array(ndims).fill(0), 0);
  const matrix = numbers("TransformMatrix", ndims * ndims) ?? numbers("Rotation", ndims * ndims) ?? numbers("Orientation", ndims * ndims);
  const [nx, ny, nz] = pad(dims, 1);
  const header: VolumeHeader = {
    dtype: fileDtype,
    shape: [nz, ny, nx],
    spacingUm: [spacing[2], spacing[1], spacing[0]] as Vec3,
    originUm: [offset[2], offset[1], offset[0]] as Vec3,
  };
  if (matrix) header.direction = ndims === 3 ? matrix : [matrix[0], matrix[1], 0, matrix[2], matrix[3], 0, 0, 0, 1];
  return header;
}

/** Opens a .mha or .mhd for region and slab reads. */
export async function openMetaImage(path: string): Promise<RawSource> {
  const { fields, dataOffset } = headerFields(path, await readHead(path));
  const header = headerOf(path, fields);
  const truthy = (key: string) => /^(true|1)$/i.test(fields.get(key) ?? "");
  const dataFile = fields.get("ElementDataFile")!;
  if (dataFile === "LIST" || /%/.test(dataFile)) throw new Error(`${path}: ElementDataFile '${dataFile}' (a list of slice files) is not supported`);
  const local = dataFile === "LOCAL";
  const headerOffset = Number(fields.get("HeaderSize") ?? 0);
  return RawSource.open({
    path,
    dataPath: local ? path : containedDataFile(path, dataFile),
    dataOffset: local ? dataOffset : headerOffset > 0 ? headerOffset : 0,
    compression: truthy("CompressedData") ? "zlib" : "none",
    bigEndian: truthy("BinaryDataByteOrderMSB") || truthy("ElementByteOrderMSB"),
    fileDtype: header.dtype,
    header,
    exactSize: local,
  });
}

export interface MetaImageWriteOptions {
  /** zlib-compress the voxels (default: true for .mha, as the challenge's example writes its outputs). */
  compress?: boolean;
  /** zlib level, 1 (default, fastest) to 9. */
  level?: number;
}

const SIZE_DIGITS = 20;

/** Creates a .mha sink (voxels after the header); CompressedDataSize is patched in when the file is closed. */
export async function createMetaImage(path: string, h: VolumeHeader, opts: MetaImageWriteOptions = {}): Promise<VolumeSink> {
  if (!path.toLowerCase().endsWith(".mha")) throw new Error(`${path}: lsmseg writes MetaImage as .mha (header and voxels in one file)`);
  const compress = opts.compress ?? true;
  const [nz, ny, nx] = h.shape;
  const [sz, sy, sx] = h.spacingUm;
  const [oz, oy, ox] = h.originUm ?? [0, 0, 0];
  const lines = [
    "ObjectType = Image",
    "NDims = 3",
    "BinaryData = True",
    "BinaryDataByteOrderMSB = False",
    `CompressedData = ${compress ? "True" : "False"}`,
  ];
  let sizeAt = -1;
  if (compress) {
    sizeAt = Buffer.byteLength(lines.join("\n") + "\n") + "CompressedDataSize = ".length;
    lines.push(`CompressedDataSize = ${"0".repeat(SIZE_DIGITS)}`);
  }
  lines.push(
    `TransformMatrix = ${(h.direction ?? [1, 0, 0, 0, 1, 0, 0, 0, 1]).join(" ")}`,
    `Offset = ${ox} ${oy} ${oz}`,
    "CenterOfRotation = 0 0 0",
    "AnatomicalOrientation = RAI",
    `ElementSpacing = ${sx} ${sy} ${sz}`,
    `DimSize = ${nx} ${ny} ${nz}`,
    `ElementType = ${DTYPE_TO_MET[h.dtype]}`,
    "ElementDataFile = LOCAL",
  );
  return RawSink.create({
    path, header: h,
    prefix: Buffer.from(lines.join("\n") + "\n", "latin1"),
    compression: compress ? "zlib" : "none",
    level: opts.level,
    patch: compress ? (n) => [[sizeAt, Buffer.from(String(n).padStart(SIZE_DIGITS, "0"), "latin1")]] : undefined,
  });
}

/**
 * The data file a header names, which must lie below the header's folder: a header (say, an input to the
 * challenge container) must not make lsmseg read any file it can reach. Absolute paths and `..` are refused,
 * and so is a name that leaves the folder through a symbolic link.
 */
function containedDataFile(headerPath: string, dataFile: string): string {
  const refuse = (why: string) => new Error(`${headerPath}: ElementDataFile '${dataFile}' ${why}; the data file must lie in the header's folder (or below it)`);
  if (isAbsolute(dataFile) || /^[A-Za-z]:[\\/]/.test(dataFile)) throw refuse("is an absolute path");
  if (dataFile.split(/[\\/]/).includes("..")) throw refuse("leaves the header's folder ('..')");
  const dir = dirname(headerPath);
  const dataPath = join(dir, dataFile);
  let real: string, realDir: string;
  try {
    realDir = realpathSync(dir);
    real = realpathSync(dataPath);
  } catch (err) {
    throw new Error(`${headerPath}: data file ${dataPath}: ${fsProblem(err)}`);
  }
  const rel = relative(realDir, real);
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel)) throw refuse(`resolves to ${real}, outside the header's folder`);
  return dataPath;
}
