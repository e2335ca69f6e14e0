// Python's pickle, restricted to what a PyTorch checkpoint needs, in both directions. Reading executes
// no code: a GLOBAL opcode resolves only names on an allow-list (OrderedDict, torch's tensor rebuild
// functions, storage classes, torch.device and dtypes, numpy scalars/arrays as nnU-Net's logs hold them,
// builtins.set/frozenset, _codecs.encode for protocol-2 bytes); any other name is refused with an Error
// naming it. Tensors come out as TensorRef placeholders (storage key, dtype, shape, stride, offset): the
// archive reader (pth.ts) turns them into tensors. Writing emits protocol 2 with only the opcodes that
// torch 1.13's weights_only unpickler accepts (no BINFLOAT: floats are refused there, so numbers that are
// not integers are written as BINFLOAT only when asked for a general pickle).
// Opcode reference: CPython's Lib/pickle.py and pickletools.py.

/** A Python tuple (JS arrays are Python lists). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python dict or OrderedDict; keys are str, int, bool or None (others are kept as their repr). */
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  constructor(readonly ordered = false, entries: Iterable<[PyKey, PyValue]> = []) {
    for (const [k, v] of entries) this.map.set(k, v);
  }
  get(key: PyKey): PyValue | undefined {
    return this.map.get(key);
  }
  has(key: PyKey): boolean {
    return this.map.has(key);
  }
}

export class PySet {
  constructor(readonly items: PyValue[], readonly frozen = false) {}
}

/** The persistent id torch pickles for a storage: ('storage', torch.FloatStorage, key, location, numel). */
export interface StorageRef {
  key: string;
  /** Element type the storage class names (UntypedStorage: uint8). */
  dtype: TorchDType;
  location: string;
  numel: number;
}

export type TorchDType = "float64" | "float32" | "float16" | "bfloat16" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";

/** A tensor as the pickle describes it; the bytes live in the archive's data/<key> record. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
    public requiresGrad: boolean,
    public isParameter = false,
  ) {}
}

/** A numpy dtype (numpy.dtype('<f8')): only numeric and boolean kinds are understood. */
class NumpyDType {
  constructor(public descr: string) {}
}

/** A numpy array: raw bytes, C or Fortran order. */
export class NumpyArray {
  constructor(public dtype: NumpyDType, public shape: number[], public data: Uint8Array, public fortran = false) {}
}

/** A name the allow-list resolved (a callable or class, used by REDUCE/NEWOBJ/BUILD). */
class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

export type PyKey = string | number | bigint | boolean | null;
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PySet
  | TensorRef | NumpyDType | NumpyArray | PyGlobal | { device: string } | { torchDtype: string };

const STORAGE_DTYPE: Record<string, TorchDType> = {
  DoubleStorage: "float64", FloatStorage: "float32", HalfStorage: "float16", BFloat16Storage: "bfloat16", LongStorage: "int64",
  IntStorage: "int32", ShortStorage: "int16", CharStorage: "int8", ByteStorage: "uint8", BoolStorage: "bool", UntypedStorage: "uint8",
};
const DTYPE_STORAGE: Record<TorchDType, string> = {
  float64: "DoubleStorage", float32: "FloatStorage", float16: "HalfStorage", bfloat16: "BFloat16Storage", int64: "LongStorage",
  int32: "IntStorage", int16: "ShortStorage", int8: "CharStorage", uint8: "ByteStorage", bool: "BoolStorage",
};
const TORCH_DTYPES = new Set(["float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool", "double", "float", "half", "long", "int", "short"]);

/** The names a state-dict checkpoint may refer to; everything else is refused. */
function allowed(module: string, name: string): boolean {
  const q = `${module}.${name}`;
  if (module === "collections" && name === "OrderedDict") return true;
  if (module === "torch._utils" && (name === "_rebuild_tensor_v2" || name === "_rebuild_parameter" || name === "_rebuild_parameter_with_state")) return true;
  if ((module === "torch" || module === "torch.storage") && name in STORAGE_DTYPE) return true;
  if (module === "torch" && (name === "device" || TORCH_DTYPES.has(name))) return true;
  if ((module === "builtins" || module === "__builtin__") && (name === "set" || name === "frozenset")) return true;
  if (q === "_codecs.encode") return true;
  if (/^numpy\.(_core|core)\.multiarray$/.test(module) && (name === "scalar" || name === "_reconstruct")) return true;
  if (module === "numpy" && (name === "dtype" || name === "ndarray")) return true;
  return false;
}

const MARK = Symbol("mark");
type StackItem = PyValue | typeof MARK;

/** Bytes of a numpy scalar or array element type as a number (or bigint for 64-bit integers beyond 2^53). */
function decodeNumpyScalar(d: NumpyDType, b: Uint8Array, where: string): PyValue {
  const le = !d.descr.startsWith(">");
  const kind = d.descr.replace(/^[<>|=]/, "");
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (kind) {
    case "f8": return v.getFloat64(0, le);
    case "f4": return v.getFloat32(0, le);
    case "f2": return halfToFloat(v.getUint16(0, le));
    case "i8": { const x = v.getBigInt64(0, le); return Number.isSafeInteger(Number(x)) ? Number(x) : x; }
    case "u8": { const x = v.getBigUint64(0, le); return Number.isSafeInteger(Number(x)) ? Number(x) : x; }
    case "i4": return v.getInt32(0, le);
    case "u4": return v.getUint32(0, le);
    case "i2": return v.getInt16(0, le);
    case "u2": return v.getUint16(0, le);
    case "i1": return v.getInt8(0);
    case "u1": return v.getUint8(0);
    case "b1": return v.getUint8(0) !== 0;
    default: throw new Error(`${where}: a numpy scalar of dtype '${d.descr}', which is not a number`);
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function asKey(k: PyValue): PyKey {
  if (k === null || typeof k === "string" || typeof k === "number" || typeof k === "bigint" || typeof k === "boolean") return k;
  if (k instanceof PyTuple) return `(${k.items.map((x) => String(asKey(x))).join(", ")})`;
  return String(k);
}

const intOf = (v: PyValue, what: string, where: string): number => {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint" && Number.isSafeInteger(Number(v))) return Number(v);
  throw new Error(`${where}: ${what} should be an integer, got ${describe(v)}`);
};
const intsOf = (v: PyValue, what: string, where: string): number[] => {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (!items) throw new Error(`${where}: ${what} should be a tuple of integers, got ${describe(v)}`);
  return items.map((x) => intOf(x, what, where));
};

function describe(v: PyValue | undefined): string {
  if (v === null) return "None";
  if (v === undefined) return "nothing";
  if (v instanceof PyGlobal) return v.qualname;
  if (v instanceof PyTuple) return "a tuple";
  if (v instanceof PyDict) return "a dict";
  if (Array.isArray(v)) return "a list";
  if (v instanceof TensorRef) return "a tensor";
  if (typeof v === "object") return v.constructor.name;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

export interface UnpickleOptions {
  /** Names the file in errors ("checkpoint.pth"). */
  source: string;
  /** Resolves BINPERSID ids; without it a persistent id is an error. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Calls an allowed global with REDUCE's arguments. */
function callGlobal(g: PyGlobal, args: PyValue[], o: UnpickleOptions): PyValue {
  const where = o.source;
  switch (g.qualname) {
    case "collections.OrderedDict": {
      const d = new PyDict(true);
      const init = args[0];
      if (Array.isArray(init)) for (const kv of init) if (kv instanceof PyTuple) d.map.set(asKey(kv.items[0]), kv.items[1]);
      return d;
    }
    case "torch._utils._rebuild_tensor_v2": {
      const [storage, offset, size, stride, requiresGrad] = args;
      if (!storage || typeof storage !== "object" || !("key" in storage)) throw new Error(`${where}: _rebuild_tensor_v2 without a storage (got ${describe(storage)})`);
      return new TensorRef(storage as unknown as StorageRef, intOf(offset, "storage offset", where), intsOf(size, "size", where), intsOf(stride, "stride", where), requiresGrad === true);
    }
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state": {
      const [data, requiresGrad] = args;
      if (!(data instanceof TensorRef)) throw new Error(`${where}: _rebuild_parameter of ${describe(data)}, expected a tensor`);
      data.requiresGrad = requiresGrad === true;
      data.isParameter = true;
      return data;
    }
    case "torch.device": {
      const [type, index] = args;
      if (typeof type !== "string") throw new Error(`${where}: torch.device(${describe(type)})`);
      return { device: index === undefined || index === null ? type : `${type}:${String(index)}` };
    }
    case "builtins.set":
    case "builtins.frozenset":
    case "__builtin__.set":
    case "__builtin__.frozenset":
      return new PySet(Array.isArray(args[0]) ? args[0] : args[0] instanceof PyTuple ? args[0].items : [], g.name === "frozenset");
    case "_codecs.encode": {
      const [s, enc] = args;
      if (typeof s !== "string" || (enc !== "latin1" && enc !== "latin-1")) throw new Error(`${where}: _codecs.encode(${describe(s)}, ${describe(enc)}); only latin1 bytes are read`);
      return Uint8Array.from(s, (c) => c.charCodeAt(0));
    }
    case "numpy.dtype": {
      const [descr] = args;
      if (typeof descr !== "string") throw new Error(`${where}: numpy.dtype(${describe(descr)})`);
      return new NumpyDType(descr);
    }
    case "numpy.core.multiarray.scalar":
    case "numpy._core.multiarray.scalar": {
      const [d, b] = args;
      if (!(d instanceof NumpyDType) || !(b instanceof Uint8Array)) throw new Error(`${where}: numpy scalar(${describe(d)}, ${describe(b)})`);
      return decodeNumpyScalar(d, b, where);
    }
    case "numpy.core.multiarray._reconstruct":
    case "numpy._core.multiarray._reconstruct":
      if (!(args[0] instanceof PyGlobal) || args[0].qualname !== "numpy.ndarray") throw new Error(`${where}: numpy _reconstruct of ${describe(args[0])}, only numpy.ndarray is read`);
      return new NumpyArray(new NumpyDType("|u1"), [0], new Uint8Array(0));
    default:
      if (g.module === "torch" && TORCH_DTYPES.has(g.name)) throw new Error(`${where}: torch.${g.name} is not callable`);
      throw new Error(`${where}: refuses to call ${g.qualname} (only state-dict classes are allowed)`);
  }
}

/** BUILD: sets an object's state. Only dicts (OrderedDict's attributes), numpy dtypes/arrays and tensors take one. */
function build(obj: PyValue, state: PyValue, where: string): void {
  if (obj instanceof NumpyDType) {
    // state: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
    if (state instanceof PyTuple && typeof state.items[1] === "string") {
      const order = state.items[1] as string;
      const kind = obj.descr.replace(/^[<>|=]/, "");
      obj.descr = (order === "|" || order === "=" ? "<" : order) + kind;
    }
    return;
  }
  if (obj instanceof NumpyArray) {
    // state: (version, shape, dtype, is_fortran, rawdata)
    if (!(state instanceof PyTuple) || state.items.length < 5) throw new Error(`${where}: numpy array state is not (version, shape, dtype, fortran, data)`);
    const [, shape, dtype, fortran, raw] = state.items;
    if (!(dtype instanceof NumpyDType)) throw new Error(`${where}: numpy array with dtype ${describe(dtype)}`);
    if (!(raw instanceof Uint8Array)) throw new Error(`${where}: numpy array of objects (${describe(raw)}) are not read`);
    obj.shape = intsOf(shape, "numpy shape", where);
    obj.dtype = dtype;
    obj.fortran = fortran === true;
    obj.data = raw;
    return;
  }
  if (obj instanceof PyDict || obj instanceof TensorRef) return; // OrderedDict/_metadata or a tensor's python attributes: nothing to keep
  throw new Error(`${where}: refuses to set the state of ${describe(obj)} (only state-dict classes are allowed)`);
}

/** The unpickler's state: the bytes and read position, the stack and the memo. */
class Unpickler {
  readonly where: string;
  private readonly view: DataView;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  pos = 0;
  readonly stack: StackItem[] = [];
  readonly memo = new Map<number, PyValue>();

  constructor(readonly data: Uint8Array, readonly o: UnpickleOptions) {
    this.where = o.source;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  // --- reading the opcodes' arguments
  need(n: number): void {
    if (this.pos + n > this.data.length) throw new Error(`${this.where}: the pickle ends early (truncated file?)`);
  }
  u8(): number { this.need(1); return this.data[this.pos++]; }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  u64(): number { this.need(8); const v = Number(this.view.getBigUint64(this.pos, true)); this.pos += 8; return v; }
  i32(): number { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f64be(): number { this.need(8); const v = this.view.getFloat64(this.pos, false); this.pos += 8; return v; }
  bytes(n: number): Uint8Array { this.need(n); const b = this.data.slice(this.pos, this.pos + n); this.pos += n; return b; }
  text(n: number): string { return this.decoder.decode(this.bytes(n)); }
  line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) throw new Error(`${this.where}: the pickle ends early (truncated file?)`);
    const s = new TextDecoder("latin1").decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  // --- the stack
  push(v: StackItem): void { this.stack.push(v); }
  pop(): PyValue {
    const v = this.stack.pop();
    if (v === undefined || v === MARK) throw new Error(`${this.where}: malformed pickle (stack underflow at byte ${this.pos})`);
    return v;
  }
  top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) throw new Error(`${this.where}: malformed pickle (empty stack at byte ${this.pos})`);
    return v;
  }
  popMark(): PyValue[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) throw new Error(`${this.where}: malformed pickle (no MARK at byte ${this.pos})`);
    const items = this.stack.splice(i) as PyValue[];
    items.shift();
    return items;
  }

  // --- what the opcodes do to objects
  global(module: string, name: string): PyValue {
    if (!allowed(module, name)) throw new Error(`${this.where}: refuses to unpickle ${module}.${name} (only state-dict classes are allowed)`);
    if (module === "torch" && name in STORAGE_DTYPE) return new PyGlobal(module, name);
    if (module === "torch" && TORCH_DTYPES.has(name)) return { torchDtype: name };
    return new PyGlobal(module, name);
  }
  setItems(d: PyValue, kv: PyValue[]): void {
    if (!(d instanceof PyDict)) throw new Error(`${this.where}: SETITEM on ${describe(d)} (only dicts take items)`);
    for (let i = 0; i + 1 < kv.length; i += 2) d.map.set(asKey(kv[i]), kv[i + 1]);
  }
  append(l: PyValue, items: PyValue[]): void {
    if (Array.isArray(l)) l.push(...items);
    else if (l instanceof PySet && !l.frozen) l.items.push(...items);
    else throw new Error(`${this.where}: APPEND on ${describe(l)} (only lists take items)`);
  }
}

/** Stack, constant, number, string and bytes opcodes; false when `op` is none of them. */
function scalarOp(u: Unpickler, op: number): boolean {
  switch (op) {
    case 0x80: u.u8(); return true; // PROTO
    case 0x95: u.u64(); return true; // FRAME
    case 0x28: u.push(MARK); return true; // MARK
    case 0x30: u.pop(); return true; // POP
    case 0x31: u.popMark(); return true; // POP_MARK
    case 0x32: u.push(u.top()); return true; // DUP
    case 0x4e: u.push(null); return true; // NONE
    case 0x88: u.push(true); return true; // NEWTRUE
    case 0x89: u.push(false); return true; // NEWFALSE
    case 0x4a: u.push(u.i32()); return true; // BININT
    case 0x4b: u.push(u.u8()); return true; // BININT1
    case 0x4d: u.push(u.u16()); return true; // BININT2
    case 0x8a: case 0x8b: { // LONG1, LONG4
      const n = op === 0x8a ? u.u8() : u.u32();
      const b = u.bytes(n);
      let v = 0n;
      for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
      if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
      u.push(Number.isSafeInteger(Number(v)) ? Number(v) : v);
      return true;
    }
    case 0x47: u.push(u.f64be()); return true; // BINFLOAT (big-endian)
    case 0x58: u.push(u.text(u.u32())); return true; // BINUNICODE
    case 0x8c: u.push(u.text(u.u8())); return true; // SHORT_BINUNICODE
    case 0x8d: u.push(u.text(u.u64())); return true; // BINUNICODE8
    // py2 str: latin1 text, as pickle.Unpickler(encoding="latin1") reads it (torch.load does)
    case 0x54: u.push(new TextDecoder("latin1").decode(u.bytes(u.u32()))); return true; // BINSTRING
    case 0x55: u.push(new TextDecoder("latin1").decode(u.bytes(u.u8()))); return true; // SHORT_BINSTRING
    case 0x42: u.push(u.bytes(u.u32())); return true; // BINBYTES
    case 0x43: u.push(u.bytes(u.u8())); return true; // SHORT_BINBYTES
    case 0x8e: case 0x96: u.push(u.bytes(u.u64())); return true; // BINBYTES8, BYTEARRAY8
    default: return false;
  }
}

/** Tuple, list, dict and set opcodes; false when `op` is none of them. */
function containerOp(u: Unpickler, op: number): boolean {
  switch (op) {
    case 0x29: u.push(new PyTuple([])); return true; // EMPTY_TUPLE
    case 0x74: u.push(new PyTuple(u.popMark())); return true; // TUPLE
    case 0x85: u.push(new PyTuple([u.pop()])); return true; // TUPLE1
    case 0x86: { const b = u.pop(), a = u.pop(); u.push(new PyTuple([a, b])); return true; } // TUPLE2
    case 0x87: { const c = u.pop(), b = u.pop(), a = u.pop(); u.push(new PyTuple([a, b, c])); return true; } // TUPLE3
    case 0x5d: u.push([]); return true; // EMPTY_LIST
    case 0x6c: u.push(u.popMark()); return true; // LIST
    case 0x61: { const v = u.pop(); u.append(u.top(), [v]); return true; } // APPEND
    case 0x65: { const items = u.popMark(); u.append(u.top(), items); return true; } // APPENDS
    case 0x7d: u.push(new PyDict()); return true; // EMPTY_DICT
    case 0x64: { const d = new PyDict(); u.setItems(d, u.popMark()); u.push(d); return true; } // DICT
    case 0x73: { const v = u.pop(), k = u.pop(); u.setItems(u.top(), [k, v]); return true; } // SETITEM
    case 0x75: { const kv = u.popMark(); u.setItems(u.top(), kv); return true; } // SETITEMS
    case 0x8f: u.push(new PySet([])); return true; // EMPTY_SET
    case 0x90: { const items = u.popMark(); u.append(u.top(), items); return true; } // ADDITEMS
    case 0x91: u.push(new PySet(u.popMark(), true)); return true; // FROZENSET
    default: return false;
  }
}

/** Globals, calls, object construction, state, persistent ids and the memo; false when `op` is none of them. */
function objectOp(u: Unpickler, op: number): boolean {
  const { where, o } = u;
  switch (op) {
    case 0x63: { const module = u.line(); const name = u.line(); u.push(u.global(module, name)); return true; } // GLOBAL
    case 0x93: { // STACK_GLOBAL
      const name = u.pop(), module = u.pop();
      if (typeof module !== "string" || typeof name !== "string") throw new Error(`${where}: malformed pickle (STACK_GLOBAL of non-strings)`);
      u.push(u.global(module, name));
      return true;
    }
    case 0x52: { // REDUCE
      const args = u.pop(), fn = u.pop();
      if (!(fn instanceof PyGlobal)) throw new Error(`${where}: refuses to call ${describe(fn)} (only state-dict classes are allowed)`);
      if (!(args instanceof PyTuple)) throw new Error(`${where}: REDUCE of ${fn.qualname} without an argument tuple`);
      u.push(callGlobal(fn, args.items, o));
      return true;
    }
    case 0x81: case 0x92: { // NEWOBJ, NEWOBJ_EX: cls.__new__(cls, *args)
      if (op === 0x92) u.pop(); // kwargs
      u.pop(); // args
      const cls = u.pop();
      if (!(cls instanceof PyGlobal) || cls.qualname !== "collections.OrderedDict") {
        throw new Error(`${where}: refuses to construct ${describe(cls)} (only state-dict classes are allowed)`);
      }
      u.push(new PyDict(true));
      return true;
    }
    case 0x62: { const state = u.pop(); build(u.top(), state, where); return true; } // BUILD
    case 0x51: { // BINPERSID
      const pid = u.pop();
      if (!o.persistentLoad) throw new Error(`${where}: the pickle refers to an external object (persistent id) but none can be resolved here`);
      u.push(o.persistentLoad(pid));
      return true;
    }
    case 0x68: u.push(memoGet(u.memo, u.u8(), where)); return true; // BINGET
    case 0x6a: u.push(memoGet(u.memo, u.u32(), where)); return true; // LONG_BINGET
    case 0x67: u.push(memoGet(u.memo, Number(u.line()), where)); return true; // GET
    case 0x71: u.memo.set(u.u8(), u.top()); return true; // BINPUT
    case 0x72: u.memo.set(u.u32(), u.top()); return true; // LONG_BINPUT
    case 0x70: u.memo.set(Number(u.line()), u.top()); return true; // PUT
    case 0x94: u.memo.set(u.memo.size, u.top()); return true; // MEMOIZE
    case 0x69: { // INST: module\nname\n, then constructs; same allow-list
      const module = u.line(), name = u.line();
      const g = u.global(module, name);
      const args = u.popMark();
      u.push(g instanceof PyGlobal ? callGlobal(g, args, o) : g);
      return true;
    }
    default: return false;
  }
}

/** Reads one pickle from `data`, resolving globals only from the allow-list. */
export function unpickle(data: Uint8Array, o: UnpickleOptions): PyValue {
  const u = new Unpickler(data, o);
  const where = u.where;
  for (;;) {
    const op = u.u8();
    if (op === 0x2e) return u.pop(); // STOP
    if (scalarOp(u, op) || containerOp(u, op) || objectOp(u, op)) continue;
    if (op === 0x6f || (op >= 0x82 && op <= 0x84)) {
      throw new Error(`${where}: refuses the pickle opcode ${op === 0x6f ? "OBJ" : "EXT"} (it constructs arbitrary objects)`);
    }
    if ([0x49, 0x4c, 0x46, 0x53, 0x56, 0x50].includes(op)) {
      throw new Error(`${where}: a text-mode (protocol 0) pickle opcode '${String.fromCharCode(op)}' at byte ${u.pos - 1}; torch.save writes binary pickles only`);
    }
    throw new Error(`${where}: unknown pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${u.pos - 1} (not a pickle, or a corrupt one)`);
  }
}

function memoGet(memo: Map<number, PyValue>, i: number, where: string): PyValue {
  const v = memo.get(i);
  if (v === undefined) throw new Error(`${where}: malformed pickle (memo ${i} was never stored)`);
  return v;
}

/** ('storage', torch.FloatStorage, key, location, numel) → a StorageRef; every other persistent id is refused. */
export function storageFromPersistentId(pid: PyValue, where: string): StorageRef {
  if (!(pid instanceof PyTuple) || pid.items[0] !== "storage" || pid.items.length < 5) throw new Error(`${where}: a persistent id that is not a torch storage (${describe(pid)})`);
  const [, cls, key, location, numel] = pid.items;
  if (!(cls instanceof PyGlobal) || !(cls.name in STORAGE_DTYPE)) throw new Error(`${where}: storage of class ${describe(cls)}`);
  if (typeof key !== "string" || !/^[A-Za-z0-9_]+$/.test(key)) throw new Error(`${where}: storage key ${describe(key)} is not a plain name`);
  return { key, dtype: STORAGE_DTYPE[cls.name], location: typeof location === "string" ? location : "cpu", numel: intOf(numel, "storage size", where) };
}

// ---------------------------------------------------------------------------------------------------------
// Writing (protocol 2)

/** A tensor to pickle: its storage key and layout (contiguous: offset 0, row-major strides). */
export interface TensorOut {
  storageKey: string;
  dtype: TorchDType;
  shape: number[];
  /** Elements in the storage (may exceed the tensor's when tensors share one). */
  storageNumel: number;
  storageOffset?: number;
  stride?: number[];
}

export type PickleIn = null | boolean | number | bigint | string | PickleIn[] | PyTuple | PyDict | { tensorOut: TensorOut };

class Writer {
  private chunks: number[] = [];
  byte(...b: number[]): void { for (const x of b) this.chunks.push(x); }
  u32(v: number): void { this.byte(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff); }
  raw(b: Uint8Array): void { for (const x of b) this.chunks.push(x); }
  result(): Uint8Array { return Uint8Array.from(this.chunks); }
}

/** Pickles `value` with protocol 2 as torch.save does (tensors as _rebuild_tensor_v2 over persistent storages). */
export function pickle(value: PickleIn): Uint8Array {
  const w = new Writer();
  const enc = new TextEncoder();
  const str = (s: string) => { const b = enc.encode(s); w.byte(0x58); w.u32(b.length); w.raw(b); };
  const glob = (module: string, name: string) => { w.byte(0x63); w.raw(enc.encode(`${module}\n${name}\n`)); };
  const int = (v: number | bigint) => {
    const n = typeof v === "bigint" ? v : BigInt(v);
    if (n >= 0n && n < 256n) w.byte(0x4b, Number(n));
    else if (n >= 0n && n < 65536n) { w.byte(0x4d, Number(n) & 0xff, Number(n) >> 8); }
    else if (n >= -(2n ** 31n) && n < 2n ** 31n) { w.byte(0x4a); w.u32(Number(BigInt.asUintN(32, n))); }
    else {
      const out: number[] = [];
      let x = n;
      for (;;) {
        out.push(Number(x & 0xffn));
        x >>= 8n;
        if ((x === 0n && !(out[out.length - 1] & 0x80)) || (x === -1n && out[out.length - 1] & 0x80)) break;
      }
      w.byte(0x8a, out.length, ...out);
    }
  };
  const tuple = (items: (() => void)[]) => {
    if (items.length === 0) { w.byte(0x29); return; }
    if (items.length <= 3) { for (const f of items) f(); w.byte([0x85, 0x86, 0x87][items.length - 1]); return; }
    w.byte(0x28);
    for (const f of items) f();
    w.byte(0x74);
  };
  const dictItems = (d: PyDict) => {
    const entries = [...d.map];
    for (let i = 0; i < entries.length; i += 1000) {
      w.byte(0x28);
      for (const [k, v] of entries.slice(i, i + 1000)) { put(k); put(v as PickleIn); }
      w.byte(0x75);
    }
  };
  const put = (v: PickleIn): void => {
    if (v === null) w.byte(0x4e);
    else if (v === true) w.byte(0x88);
    else if (v === false) w.byte(0x89);
    else if (typeof v === "bigint") int(v);
    else if (typeof v === "number") {
      if (Number.isInteger(v)) int(v);
      else { w.byte(0x47); const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, v, false); w.raw(new Uint8Array(b.buffer)); }
    } else if (typeof v === "string") str(v);
    else if (Array.isArray(v)) {
      w.byte(0x5d);
      if (v.length) { w.byte(0x28); for (const x of v) put(x); w.byte(0x65); }
    } else if (v instanceof PyTuple) tuple(v.items.map((x) => () => put(x as PickleIn)));
    else if (v instanceof PyDict) {
      if (v.ordered) { glob("collections", "OrderedDict"); w.byte(0x29, 0x52); } else w.byte(0x7d);
      dictItems(v);
    } else if ("tensorOut" in v) {
      const t = v.tensorOut;
      const stride = t.stride ?? contiguousStride(t.shape);
      glob("torch._utils", "_rebuild_tensor_v2");
      w.byte(0x28); // the argument tuple
      tuple([() => str("storage"), () => glob("torch", DTYPE_STORAGE[t.dtype]), () => str(t.storageKey), () => str("cpu"), () => int(t.storageNumel)]);
      w.byte(0x51); // BINPERSID
      int(t.storageOffset ?? 0);
      tuple(t.shape.map((d) => () => int(d)));
      tuple(stride.map((d) => () => int(d)));
      w.byte(0x89); // requires_grad False
      glob("collections", "OrderedDict"); w.byte(0x29, 0x52); // backward hooks
      w.byte(0x74, 0x52); // TUPLE, REDUCE
    } else throw new Error(`pickle: cannot write ${describe(v as PyValue)}`);
  };
  w.byte(0x80, 2);
  put(value);
  w.byte(0x2e);
  return w.result();
}

export function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}
