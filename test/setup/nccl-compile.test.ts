// The NCCL process group (native/nccl.cc) compiles against libtorch's own ProcessGroupNCCL.hpp. No machine here
// has a CUDA libtorch, so this is the check that keeps nccl.cc in step with the headers: it needs the CUDA
// runtime headers (a CUDA toolkit in /usr/local/cuda or CUDA_HOME) and stands in declarations for NCCL and the
// CUDA maths libraries (fixtures/cuda-stubs).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cudaInclude = [process.env.CUDA_HOME && join(process.env.CUDA_HOME, "include"), "/usr/local/cuda/include"]
  .find((d): d is string => !!d && existsSync(join(d, "cuda_runtime_api.h")));
const torchInclude = process.env.LIBTORCH ? join(process.env.LIBTORCH, "include") : "/usr/include";
const skip = !cudaInclude ? "needs the CUDA runtime headers (a CUDA toolkit)"
  : !existsSync(join(torchInclude, "torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")) ? "this libtorch has no ProcessGroupNCCL.hpp" : false;

test("native/nccl.cc compiles against libtorch's ProcessGroupNCCL.hpp", { skip }, () => {
  const r = spawnSync("g++", ["-fsyntax-only", "-std=c++17", "-DLSMSEG_NCCL", "-DUSE_C10D_GLOO", "-DUSE_DISTRIBUTED",
    `-I${torchInclude}`, `-I${join(torchInclude, "torch/csrc/api/include")}`, `-I${cudaInclude}`, `-I${join(root, "fixtures/cuda-stubs")}`,
    join(root, "native/nccl.cc")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
