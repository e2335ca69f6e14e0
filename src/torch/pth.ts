// PyTorch's checkpoint files (torch.save since 1.6): a ZIP archive <name>/data.pkl (the pickled object,
// tensors as persistent ids naming storages), <name>/data/<key> (each storage's raw bytes),
// <name>/byteorder ("little"/"big"; absent means little) and <name>/version. Reading goes through the
// restricted unpickler (pickle.ts): nothing is executed and only state-dict classes are accepted.
// Writing mirrors torch.save: stored entries aligned to 64 bytes, pickle protocol 2, one storage per
// distinct tensor (a tensor stored under two keys, as nnU-Net's duplicated all_modules keys are, shares it).
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { zipEntries, zipRead, zipStored } from "../util/zip.ts";
import { type DType } from "./dtype.ts";
import {
  type PickleIn, type PyValue, type TorchDType, PyDict, PyTuple, TensorRef, contiguousStride, pickle, storageFromPersistentId, unpickle,
} from "./pickle.ts";
import { type Tensor, fromBytes } from "./tensor.ts";

const ELEMENT_BYTES: Record<TorchDType, number> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

export interface PthFile {
  source: string;
  /** The unpickled object: dicts, lists, numbers, strings, with TensorRef where tensors were. */
  root: PyValue;
  /** A new tensor (owned by the caller) with the values `ref` describes; views are copied out contiguously. */
  tensor(ref: TensorRef): Tensor;
}

/** Reads a torch.save file without executing any of it. */
export function readPth(path: string, buf: Buffer = readFileSync(path)): PthFile {
  const source = basename(path);
  if (buf.length >= 2 && buf[0] === 0x80 && buf[1] <= 5) {
    throw new Error(`${source}: a legacy (PyTorch < 1.6, non-zip) checkpoint, which lsmseg does not read; re-save it with torch.save(torch.load(f), f2) in a PyTorch ≥ 1.6`);
  }
  if (buf.length < 4 || buf.readUInt32LE(0) !== 0x04034b50) throw new Error(`${source}: not a PyTorch checkpoint (expected a torch.save zip archive)`);
  const entries = zipEntries(buf, source);
  const pkl = entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (entries.some((e) => /^[^/]+\/(constants\.pkl|code\/)/.test(e.name))) {
    throw new Error(`${source}: a TorchScript archive (torch.jit.save), which holds code; save the model's state_dict() with torch.save instead`);
  }
  if (!pkl) throw new Error(`${source}: a zip archive without <name>/data.pkl, not a torch.save checkpoint`);
  const prefix = pkl.name.slice(0, -"data.pkl".length);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const order = byName.get(`${prefix}byteorder`);
  const byteorder = order ? zipRead(buf, order, source).toString("latin1").trim() : "little";
  if (byteorder !== "little" && byteorder !== "big") throw new Error(`${source}: byteorder record says '${byteorder}', expected little or big`);
  const storages = new Map<string, { dtype: TorchDType; numel: number }>();
  const root = unpickle(zipRead(buf, pkl, source), {
    source,
    persistentLoad: (pid) => {
      const s = storageFromPersistentId(pid, source);
      const seen = storages.get(s.key);
      if (seen && seen.dtype !== s.dtype) throw new Error(`${source}: storage ${s.key} is read as ${seen.dtype} and as ${s.dtype}`);
      storages.set(s.key, { dtype: s.dtype, numel: s.numel });
      return s as unknown as PyValue;
    },
  });
  const data = new Map<string, Buffer>();
  const record = (key: string): Buffer => {
    let b = data.get(key);
    if (!b) {
      const e = byName.get(`${prefix}data/${key}`);
      if (!e) throw new Error(`${source}: storage ${key} has no record ${prefix}data/${key}`);
      b = zipRead(buf, e, source);
      data.set(key, b);
    }
    return b;
  };
  return {
    source,
    root,
    tensor(ref: TensorRef): Tensor {
      const { key, dtype, numel } = ref.storage;
      const es = ELEMENT_BYTES[dtype];
      const bytes = record(key);
      if (bytes.length < numel * es) throw new Error(`${source}: storage ${key} holds ${bytes.length} bytes, fewer than its ${numel} ${dtype} elements`);
      const n = ref.shape.reduce((a, d) => a * d, 1);
      const out = n === 0 ? new Uint8Array(0) : gather(bytes, ref, es, numel, source);
      if (byteorder === "big" && es > 1) swapBytes(out, es);
      return fromBytes(out, ref.shape, dtype as DType);
    },
  };
}

/** The tensor's elements in row-major order: a slice when it is contiguous, else an element-wise copy. */
function gather(bytes: Buffer, ref: TensorRef, es: number, storageNumel: number, source: string): Uint8Array {
  const { shape, stride, storageOffset } = ref;
  if (stride.length !== shape.length) throw new Error(`${source}: a tensor of shape [${shape}] with stride [${stride}]`);
  let last = storageOffset;
  for (let i = 0; i < shape.length; i++) {
    if (stride[i] < 0) throw new Error(`${source}: a tensor with negative stride [${stride}]`);
    last += (shape[i] - 1) * stride[i];
  }
  if (storageOffset < 0 || last >= storageNumel) throw new Error(`${source}: a tensor of shape [${shape}], stride [${stride}], offset ${storageOffset} reaches past its storage of ${storageNumel} elements`);
  const contiguous = contiguousStride(shape);
  const n = shape.reduce((a, d) => a * d, 1);
  if (shape.every((d, i) => d === 1 || stride[i] === contiguous[i])) return bytes.slice(storageOffset * es, (storageOffset + n) * es);
  const out = new Uint8Array(n * es);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    let e = storageOffset;
    for (let i = 0; i < shape.length; i++) e += idx[i] * stride[i];
    out.set(bytes.subarray(e * es, e * es + es), k * es);
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

function swapBytes(b: Uint8Array, es: number): void {
  for (let i = 0; i < b.length; i += es) b.subarray(i, i + es).reverse();
}

/** The tensors of a state dict (a dict of name → tensor), refusing anything that is not one. */
export function stateDictOf(v: PyValue | undefined, where: string): Map<string, TensorRef> {
  if (!(v instanceof PyDict)) throw new Error(`${where}: expected a state dict (a dict of tensors), found ${v === undefined ? "nothing" : v === null ? "None" : typeof v === "object" ? v.constructor.name : typeof v}`);
  const out = new Map<string, TensorRef>();
  for (const [k, t] of v.map) {
    if (typeof k !== "string") throw new Error(`${where}: state-dict key ${String(k)} is not a string`);
    if (!(t instanceof TensorRef)) throw new Error(`${where}: state-dict entry '${k}' is not a tensor`);
    out.set(k, t);
  }
  return out;
}

/** Builds what savePth writes: tensors become storages (one per distinct Tensor object). */
export class PthWriter {
  private readonly storages = new Map<Tensor, { key: string; bytes: Uint8Array }>();

  /** A pickle placeholder for `t` (contiguous, offset 0); the same Tensor twice shares one storage. */
  ref(t: Tensor): PickleIn {
    let s = this.storages.get(t);
    if (!s) {
      s = { key: String(this.storages.size), bytes: t.bytes() };
      this.storages.set(t, s);
    }
    return { tensorOut: { storageKey: s.key, dtype: t.dtype as TorchDType, shape: t.shape, storageNumel: t.numel } };
  }

  /** An OrderedDict of tensors, as module.state_dict() returns it. */
  stateDict(entries: Iterable<[string, Tensor]>): PyDict {
    return new PyDict(true, [...entries].map(([k, t]) => [k, this.ref(t) as PyValue]));
  }

  /** Writes `root` as torch.save would (archive folder named after the file, as torch 1.13 names it). */
  save(path: string, root: PickleIn): void {
    const name = basename(path).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_") || "archive";
    const entries = [
      { name: `${name}/data.pkl`, data: pickle(root) },
      { name: `${name}/byteorder`, data: Buffer.from("little") },
      ...[...this.storages.values()].map((s) => ({ name: `${name}/data/${s.key}`, data: s.bytes })),
      { name: `${name}/version`, data: Buffer.from("3\n") },
    ];
    writeFileAtomic(path, ...zipStored(entries, 64));
  }
}

export { PyDict, PyTuple, TensorRef };
