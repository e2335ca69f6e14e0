// lsmseg's tensor engine: the TypeScript face of the libtorch addon.
export { Tensor, Generator, tensor, zeros, ones, full, empty, zerosLike, onesLike, rand, randn, randint, randperm, arange, linspace, fromBytes, callOp, opHandle } from "./tensor.ts";
export type { CreateOptions, RandomOptions, TensorOrScalar } from "./tensor.ts";
export * from "./ops.ts";
export { tidy, keep, scopeDepth } from "./scope.ts";
export { noGrad, enableGrad, isGradEnabled, grad } from "./autograd.ts";
export { autocast, cpuHasBf16, defaultPrecision } from "./autocast.ts";
export type { AutocastOptions } from "./autocast.ts";
export { setNumThreads, getNumThreads, manualSeed, getRngState, setRngState, buildInfo, cudaAvailable, cudaSynchronize, gpuMemoryBytes, setMkldnnEnabled, liveTensors, releaseFreeMemory, schemas } from "./runtime.ts";
export type { DType, MemoryFormat, TypedArray } from "./dtype.ts";
export { isFloating } from "./dtype.ts";
export { saveSafetensors, loadSafetensors, readSafetensorsHeader } from "./safetensors.ts";
export type { SafetensorsFile } from "./safetensors.ts";
export { saveCheckpoint, loadCheckpoint, readCheckpointMeta } from "./checkpoint.ts";
export type { Checkpoint, CheckpointMeta } from "./checkpoint.ts";
export { GradSync, ProcessGroup, defaultBackend, distOptionsFromEnv } from "./distributed.ts";
export type { Backend, DistOptions, ReduceOp } from "./distributed.ts";
