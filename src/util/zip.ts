// The ZIP container as PyTorch uses it for torch.save: a reader for stored or deflated entries (zip64
// sizes and offsets included) and a writer of stored entries whose data starts on 64-byte boundaries,
// padded with an extra field as PyTorch's own writer (caffe2/serialize/inline_container.cc) pads them.
// Format: PKWARE's APPNOTE.TXT (local headers 0x04034b50, central directory 0x02014b50, end 0x06054b50).
import { crc32, inflateRawSync } from "node:zlib";

export interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** The central directory of a ZIP file held in `buf`. */
export function zipEntries(buf: Buffer, source: string): ZipEntry[] {
  const fail = (m: string) => new Error(`${source}: not a valid zip archive: ${m}`);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw fail("no end-of-central-directory record");
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  const loc = eocd - 20;
  if (loc >= 0 && buf.readUInt32LE(loc) === 0x07064b50) {
    const z = Number(buf.readBigUInt64LE(loc + 8));
    if (buf.readUInt32LE(z) !== 0x06064b50) throw fail("bad zip64 end record");
    count = Number(buf.readBigUInt64LE(z + 32));
    cdOffset = Number(buf.readBigUInt64LE(z + 48));
  }
  const out: ZipEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw fail(`central directory entry ${i} is damaged`);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    let compressedSize = buf.readUInt32LE(p + 20);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28), extraLen = buf.readUInt16LE(p + 30), commentLen = buf.readUInt16LE(p + 32);
    let localOffset = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString("utf8");
    // zip64 extra field (id 1): the fields whose 32-bit slot is 0xffffffff, in this order
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = buf.readUInt16LE(e), len = buf.readUInt16LE(e + 2);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) { size = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = Number(buf.readBigUInt64LE(q)); q += 8; }
        if (localOffset === 0xffffffff) { localOffset = Number(buf.readBigUInt64LE(q)); }
      }
      e += 4 + len;
    }
    out.push({ name, method, crc, compressedSize, size, localOffset });
    p = end + commentLen;
  }
  return out;
}

/** An entry's bytes (a view into `buf` for stored entries), CRC-checked. */
export function zipRead(buf: Buffer, e: ZipEntry, source: string): Buffer {
  const p = e.localOffset;
  if (buf.readUInt32LE(p) !== 0x04034b50) throw new Error(`${source}: zip entry '${e.name}' has no local header`);
  const start = p + 30 + buf.readUInt16LE(p + 26) + buf.readUInt16LE(p + 28);
  if (start + e.compressedSize > buf.length) throw new Error(`${source}: zip entry '${e.name}' runs past the end of the file (truncated?)`);
  const raw = buf.subarray(start, start + e.compressedSize);
  let data: Buffer;
  if (e.method === 0) data = raw;
  else if (e.method === 8) data = inflateRawSync(raw);
  else throw new Error(`${source}: zip entry '${e.name}' uses compression method ${e.method} (only stored and deflate are read)`);
  if (data.length !== e.size) throw new Error(`${source}: zip entry '${e.name}' has ${data.length} bytes, the directory says ${e.size}`);
  if (crc32(data) >>> 0 !== e.crc >>> 0) throw new Error(`${source}: zip entry '${e.name}' fails its CRC check (corrupt file)`);
  return data;
}

/**
 * A ZIP archive of stored entries, each entry's data aligned to `align` bytes (PyTorch: 64) by an
 * extra field "FB" of padding in the local header. Returns the chunks to write, in order.
 */
export function zipStored(entries: { name: string; data: Uint8Array }[], align = 64): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBuf = Buffer.from(name, "utf8");
    const base = offset + 30 + nameBuf.length;
    let pad = (align - ((base + 4) % align)) % align;
    const extra = Buffer.alloc(4 + pad, "Z".charCodeAt(0));
    extra.writeUInt16LE(0x4246, 0); // "FB"
    extra.writeUInt16LE(pad, 2);
    pad = extra.length;
    if (offset + data.byteLength > 0xfffffffe) throw new Error(`zip: archives over 4 GiB are not written (entry '${name}')`);
    const crc = crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time, date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.byteLength, 18);
    local.writeUInt32LE(data.byteLength, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(extra.length, 28);
    chunks.push(local, nameBuf, extra, data);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4); // made by
    cd.writeUInt16LE(20, 6); // needed
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.byteLength, 20);
    cd.writeUInt32LE(data.byteLength, 24);
    cd.writeUInt16LE(nameBuf.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, nameBuf);
    offset += 30 + nameBuf.length + pad + data.byteLength;
  }
  const cdSize = central.reduce((s, b) => s + b.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(offset, 16);
  return [...chunks, ...central, eocd];
}
