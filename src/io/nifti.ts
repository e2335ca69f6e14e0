// NIfTI-1 and NIfTI-2 (.nii, .nii.gz): header, scaling (scl_slope/scl_inter) and the voxel→world affine.
// Layout after the NIfTI-1 (nifti1.h) and NIfTI-2 (nifti2.h) headers of the NIfTI Data Format Working Group.
import { type DType, DTYPES, type VolumeHeader, voxelCount } from "./volume.ts";
import { RawSink, RawSource, readHead, type VolumeSink } from "./stream.ts";

const CODE_TO_DTYPE: Record<number, DType> = {
  2: "uint8", 4: "int16", 8: "int32", 16: "float32", 64: "float64", 256: "int8", 512: "uint16", 768: "uint32",
};
const UNSUPPORTED_CODES: Record<number, string> = {
  1: "binary", 32: "complex64", 128: "RGB24", 1024: "int64", 1280: "uint64", 1536: "float128", 1792: "complex128", 2048: "complex256", 2304: "RGBA32",
};
const DTYPE_TO_CODE: Record<DType, number> = {
  uint8: 2, int16: 4, int32: 8, float32: 16, float64: 64, int8: 256, uint16: 512, uint32: 768,
};
// xyzt_units & 7 → micrometres per unit (0 = unknown: taken as micrometres, the microscopy convention).
const UNIT_TO_UM: Record<number, number> = { 0: 1, 1: 1e6, 2: 1e3, 3: 1 };

interface Fields {
  version: 1 | 2;
  littleEndian: boolean;
  dim: number[];
  datatype: number;
  bitpix: number;
  pixdim: number[];
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  xyztUnits: number;
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: [number, number, number];
  srow: number[];
  magic: string;
}

function parseHeader(path: string, b: Buffer): Fields {
  if (b.length < 4) throw new Error(`${path}: not a NIfTI file (only ${b.length} bytes)`);
  const le1 = b.readInt32LE(0), be1 = b.readInt32BE(0);
  const version: 1 | 2 = le1 === 348 || be1 === 348 ? 1 : le1 === 540 || be1 === 540 ? 2 : (() => {
    throw new Error(`${path}: not a NIfTI file (sizeof_hdr is ${le1}, expected 348 or 540)`);
  })();
  const littleEndian = le1 === 348 || le1 === 540;
  const need = version === 1 ? 348 : 540;
  if (b.length < need) throw new Error(`${path}: NIfTI-${version} header is truncated (${b.length} of ${need} bytes)`);
  const i16 = (o: number) => (littleEndian ? b.readInt16LE(o) : b.readInt16BE(o));
  const i32 = (o: number) => (littleEndian ? b.readInt32LE(o) : b.readInt32BE(o));
  const f32 = (o: number) => (littleEndian ? b.readFloatLE(o) : b.readFloatBE(o));
  const f64 = (o: number) => (littleEndian ? b.readDoubleLE(o) : b.readDoubleBE(o));
  const i64 = (o: number) => Number(littleEndian ? b.readBigInt64LE(o) : b.readBigInt64BE(o));
  const range = (n: number, f: (k: number) => number) => Array.from({ length: n }, (_, k) => f(k));
  if (version === 1) {
    return {
      version, littleEndian,
      dim: range(8, (k) => i16(40 + 2 * k)),
      datatype: i16(70), bitpix: i16(72),
      pixdim: range(8, (k) => f32(76 + 4 * k)),
      voxOffset: f32(108), sclSlope: f32(112), sclInter: f32(116),
      xyztUnits: b[123],
      qformCode: i16(252), sformCode: i16(254),
      quatern: [f32(256), f32(260), f32(264)], qoffset: [f32(268), f32(272), f32(276)],
      srow: range(12, (k) => f32(280 + 4 * k)),
      magic: b.toString("latin1", 344, 347),
    };
  }
  return {
    version, littleEndian,
    dim: range(8, (k) => i64(16 + 8 * k)),
    datatype: i16(12), bitpix: i16(14),
    pixdim: range(8, (k) => f64(104 + 8 * k)),
    voxOffset: i64(168), sclSlope: f64(176), sclInter: f64(184),
    xyztUnits: i32(500),
    qformCode: i32(344), sformCode: i32(348),
    quatern: [f64(352), f64(360), f64(368)], qoffset: [f64(376), f64(384), f64(392)],
    srow: range(12, (k) => f64(400 + 8 * k)),
    magic: b.toString("latin1", 4, 7),
  };
}

/** The qform's rotation, scaled by the voxel size (nifti1_io.c: quatern_to_mat44). */
function quaternToAffine(f: Fields): number[] {
  let [b, c, d] = f.quatern;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    a = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= a; c *= a; d *= a;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const xd = f.pixdim[1] > 0 ? f.pixdim[1] : 1, yd = f.pixdim[2] > 0 ? f.pixdim[2] : 1;
  let zd = f.pixdim[3] > 0 ? f.pixdim[3] : 1;
  if (f.pixdim[0] < 0) zd = -zd;
  const [ox, oy, oz] = f.qoffset;
  return [
    (a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, ox,
    2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, oy,
    2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, oz,
    0, 0, 0, 1,
  ];
}

/** Opens a .nii or .nii.gz for region and slab reads. */
export async function openNifti(path: string): Promise<RawSource> {
  const gzip = path.toLowerCase().endsWith(".gz");
  const f = parseHeader(path, await readHead(path, 544, gzip));
  if (f.magic !== (f.version === 1 ? "n+1" : "n+2")) {
    throw new Error(`${path}: NIfTI magic is '${f.magic}', expected '${f.version === 1 ? "n+1" : "n+2"}' (a single-file NIfTI; .hdr/.img pairs are not supported)`);
  }
  const fileDtype = CODE_TO_DTYPE[f.datatype];
  if (!fileDtype) {
    throw new Error(`${path}: unsupported NIfTI datatype ${f.datatype}${UNSUPPORTED_CODES[f.datatype] ? ` (${UNSUPPORTED_CODES[f.datatype]})` : ""}; lsmseg reads uint8, int8, uint16, int16, uint32, int32, float32, float64`);
  }
  if (f.bitpix !== DTYPES[fileDtype].bytes * 8) {
    throw new Error(`${path}: bitpix ${f.bitpix} does not match datatype ${fileDtype} (${DTYPES[fileDtype].bytes * 8} bits)`);
  }
  const ndim = f.dim[0];
  if (ndim < 1 || ndim > 7) throw new Error(`${path}: dim[0] is ${ndim}, expected 1 to 7`);
  for (let k = 1; k <= ndim; k++) {
    if (!(f.dim[k] >= 1)) throw new Error(`${path}: dim[${k}] is ${f.dim[k]}, expected a positive size`);
    if (k > 3 && f.dim[k] !== 1) throw new Error(`${path}: dim[${k}] is ${f.dim[k]}; only 3D volumes (dims 4 to 7 of size 1) are supported`);
  }
  const nx = f.dim[1], ny = ndim >= 2 ? f.dim[2] : 1, nz = ndim >= 3 ? f.dim[3] : 1;
  if (!(f.voxOffset >= (f.version === 1 ? 348 : 540))) throw new Error(`${path}: vox_offset ${f.voxOffset} lies inside the header`);
  const toUm = UNIT_TO_UM[f.xyztUnits & 7] ?? 1;
  const pix = (k: number) => (f.pixdim[k] > 0 && Number.isFinite(f.pixdim[k]) ? f.pixdim[k] : 1) * toUm;
  let affine: number[];
  if (f.sformCode > 0) affine = [...f.srow, 0, 0, 0, 1];
  else if (f.qformCode > 0) affine = quaternToAffine(f);
  else affine = [f.pixdim[1] || 1, 0, 0, 0, 0, f.pixdim[2] || 1, 0, 0, 0, 0, f.pixdim[3] || 1, 0, 0, 0, 0, 1];
  affine = affine.map((v, k) => (k < 12 ? v * toUm : v));
  const scaled = Number.isFinite(f.sclSlope) && f.sclSlope !== 0 && !(f.sclSlope === 1 && (f.sclInter === 0 || !Number.isFinite(f.sclInter)));
  const outDtype: DType = !scaled ? fileDtype : DTYPES[fileDtype].bytes <= 2 || fileDtype === "float32" ? "float32" : "float64";
  const header: VolumeHeader = {
    dtype: outDtype,
    shape: [nz, ny, nx],
    spacingUm: [pix(3), pix(2), pix(1)],
    originUm: [affine[11], affine[7], affine[3]],
    affine,
  };
  return RawSource.open({
    path, dataPath: path,
    dataOffset: gzip ? 0 : f.voxOffset,
    inflatedOffset: gzip ? f.voxOffset : 0,
    compression: gzip ? "gzip" : "none",
    bigEndian: !f.littleEndian,
    fileDtype,
    header,
    scale: scaled ? { slope: f.sclSlope, inter: Number.isFinite(f.sclInter) ? f.sclInter : 0 } : undefined,
  });
}

export interface NiftiWriteOptions {
  /** 1 (default, NIfTI-2 when a dimension exceeds 32767) or 2. */
  niftiVersion?: 1 | 2;
  /** gzip level for .nii.gz, 1 (default, fastest) to 9. */
  level?: number;
}

/** The affine to write: the volume's own, or its spacing and origin (x, y, z) in µm. */
function affineFor(h: VolumeHeader): number[] {
  if (h.affine?.length === 16) return h.affine;
  const [sz, sy, sx] = h.spacingUm;
  const [oz, oy, ox] = h.originUm ?? [0, 0, 0];
  return [sx, 0, 0, ox, 0, sy, 0, oy, 0, 0, sz, oz, 0, 0, 0, 1];
}

/** Encodes a NIfTI-1 or -2 header (with the 4-byte empty extension flag) for `h`. */
export function niftiHeader(h: VolumeHeader, version: 1 | 2): Buffer {
  const [nz, ny, nx] = h.shape;
  const [sz, sy, sx] = h.spacingUm;
  const affine = affineFor(h);
  const code = DTYPE_TO_CODE[h.dtype];
  const bitpix = DTYPES[h.dtype].bytes * 8;
  const dim = [3, nx, ny, nz, 1, 1, 1, 1];
  const pixdim = [1, sx, sy, sz, 1, 1, 1, 1];
  if (version === 1) {
    const b = Buffer.alloc(352);
    b.writeInt32LE(348, 0);
    dim.forEach((v, k) => b.writeInt16LE(v, 40 + 2 * k));
    b.writeInt16LE(code, 70);
    b.writeInt16LE(bitpix, 72);
    pixdim.forEach((v, k) => b.writeFloatLE(v, 76 + 4 * k));
    b.writeFloatLE(352, 108);
    b.writeFloatLE(1, 112);
    b.writeFloatLE(0, 116);
    b[123] = 3; // NIFTI_UNITS_MICRON
    b.write("lsmseg", 148, "latin1");
    b.writeInt16LE(0, 252);
    b.writeInt16LE(2, 254); // sform: aligned to something (NIFTI_XFORM_ALIGNED_ANAT)
    for (let k = 0; k < 12; k++) b.writeFloatLE(affine[k], 280 + 4 * k);
    b.write("n+1\0", 344, "latin1");
    return b;
  }
  const b = Buffer.alloc(544);
  b.writeInt32LE(540, 0);
  b.write("n+2\0\r\n\x1a\n", 4, "latin1");
  b.writeInt16LE(code, 12);
  b.writeInt16LE(bitpix, 14);
  dim.forEach((v, k) => b.writeBigInt64LE(BigInt(v), 16 + 8 * k));
  pixdim.forEach((v, k) => b.writeDoubleLE(v, 104 + 8 * k));
  b.writeBigInt64LE(544n, 168);
  b.writeDoubleLE(1, 176);
  b.writeDoubleLE(0, 184);
  b.write("lsmseg", 240, "latin1");
  b.writeInt32LE(0, 344);
  b.writeInt32LE(2, 348);
  for (let k = 0; k < 12; k++) b.writeDoubleLE(affine[k], 400 + 8 * k);
  b.writeInt32LE(3, 500);
  return b;
}

/** Creates a .nii or .nii.gz sink; planes are streamed through gzip as they come. */
export async function createNifti(path: string, h: VolumeHeader, opts: NiftiWriteOptions = {}): Promise<VolumeSink> {
  const version = opts.niftiVersion ?? (Math.max(...h.shape) > 32767 ? 2 : 1);
  if (version === 1 && Math.max(...h.shape) > 32767) throw new Error(`${path}: NIfTI-1 dimensions are limited to 32767, shape is ${h.shape.join("×")}`);
  if (voxelCount(h.shape) === 0) throw new Error(`${path}: cannot write an empty volume`);
  return RawSink.create({
    path, header: h,
    prefix: niftiHeader(h, version),
    compressPrefix: true,
    compression: path.toLowerCase().endsWith(".gz") ? "gzip" : "none",
    level: opts.level,
  });
}

