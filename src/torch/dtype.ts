// Element types: names as PyTorch spells them, codes as c10::ScalarType numbers them.

export type DType = "uint8" | "int8" | "int16" | "int32" | "int64" | "float16" | "float32" | "float64" | "bool" | "bfloat16";

export const DTYPE_CODE: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
};

const CODE_DTYPE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));

export function dtypeFromCode(code: number): DType {
  const d = CODE_DTYPE.get(code);
  if (!d) throw new Error(`libtorch returned a tensor of scalar type ${code}, which lsmseg does not support`);
  return d;
}

export function dtypeCode(d: DType): number {
  const c = DTYPE_CODE[d];
  if (c === undefined) throw new TypeError(`unknown dtype '${d}' (expected one of ${Object.keys(DTYPE_CODE).join(", ")})`);
  return c;
}

/** What `Tensor.data()` returns for each dtype (float16/bfloat16 are widened to Float32Array). */
export interface DataTypeMap {
  uint8: Uint8Array; int8: Int8Array; int16: Int16Array; int32: Int32Array; int64: BigInt64Array;
  float16: Float32Array; bfloat16: Float32Array; float32: Float32Array; float64: Float64Array; bool: Uint8Array;
}

export type TypedArray = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | Float32Array | Float64Array;

/** The dtype a typed array maps to (Uint16Array/Uint32Array have no libtorch twin: widened to int32/int64). */
export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof BigInt64Array) return "int64";
  if (a instanceof Int16Array) return "int16";
  if (a instanceof Int8Array) return "int8";
  if (a instanceof Uint8Array) return "uint8";
  if (a instanceof Uint16Array) return "int32";
  if (a instanceof Uint32Array) return "int64";
  throw new TypeError("unsupported typed array");
}

export function isFloating(d: DType): boolean {
  return d === "float16" || d === "float32" || d === "float64" || d === "bfloat16";
}

export const MEMORY_FORMAT = { contiguous: 0, preserve: 1, channelsLast: 2, channelsLast3d: 3 } as const;
export type MemoryFormat = keyof typeof MEMORY_FORMAT;
