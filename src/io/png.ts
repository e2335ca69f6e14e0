// A minimal PNG encoder (8-bit grayscale or RGB, no interlace) with node's zlib, and maximum-intensity projections:
// enough for pictures of volumes in the README and reports without an image library.
import { deflateSync } from "node:zlib";
import { type Volume } from "./volume.ts";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** Encodes a `width`×`height` 8-bit grayscale image (row-major) as PNG bytes. */
export function encodePngGray(pixels: Uint8Array, width: number, height: number): Buffer {
  return encodePng(pixels, width, height, 1);
}

/** Encodes a `width`×`height` 8-bit RGB image (row-major, r g b per pixel) as PNG bytes. */
export function encodePngRgb(pixels: Uint8Array, width: number, height: number): Buffer {
  return encodePng(pixels, width, height, 3);
}

function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Buffer {
  const row = width * channels;
  if (pixels.length !== row * height) throw new Error(`PNG: ${pixels.length} bytes for ${width}×${height}×${channels}`);
  const raw = Buffer.alloc((row + 1) * height);
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * row, (y + 1) * row), y * (row + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 1 ? 0 : 2; // grayscale or truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw, { level: 9 })), chunk("IEND", new Uint8Array(0)),
  ]);
}

/** The maximum-intensity projection along z: [y, x] as float values. */
export function mipZ(vol: Volume): Float32Array {
  const [nz, ny, nx] = vol.shape;
  const out = new Float32Array(ny * nx).fill(-Infinity);
  for (let z = 0; z < nz; z++) for (let i = 0; i < ny * nx; i++) {
    const v = vol.data[z * ny * nx + i];
    if (v > out[i]) out[i] = v;
  }
  return out;
}

/** Scales values to 0..255 between their `lo` and `hi` percentiles. */
export function toGray(values: Float32Array, lo = 0.5, hi = 99.8): Uint8Array {
  const s = Float32Array.from(values).sort();
  const a = s[Math.floor((lo / 100) * (s.length - 1))], b = s[Math.floor((hi / 100) * (s.length - 1))];
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(((values[i] - a) / Math.max(1e-9, b - a)) * 255)));
  return out;
}
