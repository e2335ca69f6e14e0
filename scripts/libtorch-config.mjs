// What the native build needs to know about a libtorch given by LIBTORCH (a pytorch.org libtorch archive, or
// the torch/ folder of a pip-installed PyTorch: both have include/ and lib/):
//   abi:   "1" or "0", the _GLIBCXX_USE_CXX11_ABI it was built with (read from libc10.so's symbols), so the
//          addon's std::string matches libtorch's;
//   cuda:  whether it is a CUDA build (lib/libtorch_cuda.so);
//   ncclIncludes: the folders holding the CUDA runtime, cuBLAS/cuSPARSE/cuSOLVER and NCCL headers that
//          ProcessGroupNCCL.hpp includes; empty when any is missing (then the addon is built without NCCL).
// Debian's libtorch-dev (LIBTORCH unset) is CPU-only with the default ABI: nothing to detect.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";

const CUDA_HEADERS = ["cuda_runtime_api.h", "cublas_v2.h", "cusparse.h", "cusolverDn.h", "nccl.h"];

/** @param {string} libtorch @param {NodeJS.ProcessEnv} env @param {string[]} systemIncludes where a CUDA toolkit and NCCL may be installed */
export function libtorchConfig(libtorch, env = process.env, systemIncludes = ["/usr/local/cuda/include", "/usr/include"]) {
  const lib = join(libtorch, "lib");
  const c10 = join(lib, "libc10.so");
  // the new ABI mangles std::string as std::__cxx11::basic_string
  const abi = existsSync(c10) ? (readFileSync(c10).includes("St7__cxx11") ? "1" : "0") : "";
  const cuda = existsSync(join(lib, "libtorch_cuda.so"));
  const notes = [];
  let ncclIncludes = [];
  if (cuda && env.LSMSEG_NCCL !== "0") {
    // pip's PyTorch: the CUDA libraries' headers are in site-packages/nvidia/<library>/include
    const pip = pipNvidiaIncludes(dirname(libtorch));
    const candidates = [
      env.CUDA_HOME && join(env.CUDA_HOME, "include"), env.CUDA_PATH && join(env.CUDA_PATH, "include"),
      env.NCCL_HOME && join(env.NCCL_HOME, "include"), env.NCCL_INCLUDE_DIR,
      ...systemIncludes, ...pip,
    ].filter(Boolean);
    const found = new Map();
    for (const h of CUDA_HEADERS) {
      const dir = candidates.find((d) => existsSync(join(d, h)));
      if (dir) found.set(h, dir);
    }
    const missing = CUDA_HEADERS.filter((h) => !found.has(h));
    if (missing.length) notes.push(`no NCCL in this build: ${missing.join(", ")} not found (set CUDA_HOME and NCCL_HOME, or install the CUDA toolkit and libnccl-dev)`);
    // every pip header folder, since those headers include each other across folders; /usr/include is searched anyway
    else ncclIncludes = [...new Set([...found.values(), ...pip])].filter((d) => d !== "/usr/include");
  }
  return { abi, cuda, ncclIncludes, notes };
}

function pipNvidiaIncludes(sitePackages) {
  const root = join(sitePackages, "nvidia");
  if (!existsSync(root)) return [];
  return readdirSync(root).map((d) => join(root, d, "include")).filter((d) => existsSync(d));
}

/** The environment node-gyp reads (binding.gyp's variables). */
export function gypEnv(config) {
  return {
    LSMSEG_TORCH_ABI: config.abi,
    LSMSEG_TORCH_CUDA: config.cuda ? "1" : "",
    LSMSEG_NCCL_INCLUDES: config.ncclIncludes.join(" "),
  };
}
