// What the native build learns from a libtorch folder (LIBTORCH): its C++ ABI, CUDA, and the headers NCCL needs.
// Fake folders with the files that matter stand in for a pytorch.org libtorch and for pip's torch/ with nvidia/.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
// @ts-expect-error: a plain .mjs build script without type declarations
import { gypEnv, libtorchConfig } from "../../scripts/libtorch-config.mjs";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-libtorch-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function touch(path: string, content = ""): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, content);
}

test("a CPU libtorch with the old ABI: no CUDA, no NCCL", () => {
  const lt = join(dir, "cpu", "libtorch");
  touch(join(lt, "lib", "libc10.so"), "\x7fELF _ZN3c106detail14torchCheckFailEPKcS2_jRKSs");
  const c = libtorchConfig(lt, {}, []);
  assert.deepEqual(c, { abi: "0", cuda: false, ncclIncludes: [], notes: [] });
  assert.deepEqual(gypEnv(c), { LSMSEG_TORCH_ABI: "0", LSMSEG_TORCH_CUDA: "", LSMSEG_NCCL_INCLUDES: "" });
});

test("pip's torch with its nvidia/ headers: cxx11 ABI, CUDA, NCCL includes from site-packages", () => {
  const site = join(dir, "site-packages");
  const lt = join(site, "torch");
  touch(join(lt, "lib", "libc10.so"), "\x7fELF _ZN3c106detail14torchCheckFailEPKcS2_jRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE");
  touch(join(lt, "lib", "libtorch_cuda.so"));
  touch(join(site, "nvidia", "cuda_runtime", "include", "cuda_runtime_api.h"));
  touch(join(site, "nvidia", "cublas", "include", "cublas_v2.h"));
  touch(join(site, "nvidia", "cusparse", "include", "cusparse.h"));
  touch(join(site, "nvidia", "cusolver", "include", "cusolverDn.h"));
  touch(join(site, "nvidia", "nccl", "include", "nccl.h"));
  touch(join(site, "nvidia", "curand", "include", "curand.h"));
  const c = libtorchConfig(lt, {}, []);
  assert.equal(c.abi, "1");
  assert.equal(c.cuda, true);
  assert.deepEqual([...c.ncclIncludes].sort(), ["cublas", "cuda_runtime", "curand", "cusolver", "cusparse", "nccl"].map((d) => join(site, "nvidia", d, "include")));
  assert.equal(gypEnv(c).LSMSEG_TORCH_CUDA, "1");
  // LSMSEG_NCCL=0 builds without NCCL
  assert.deepEqual(libtorchConfig(lt, { LSMSEG_NCCL: "0" }, []).ncclIncludes, []);
});

test("a CUDA libtorch without NCCL's header: built without NCCL, and the note says what is missing", () => {
  const lt = join(dir, "cuda", "libtorch");
  touch(join(lt, "lib", "libc10.so"), "St7__cxx11");
  touch(join(lt, "lib", "libtorch_cuda.so"));
  const cudaHome = join(dir, "cuda-12");
  for (const h of ["cuda_runtime_api.h", "cublas_v2.h", "cusparse.h", "cusolverDn.h"]) touch(join(cudaHome, "include", h));
  const c = libtorchConfig(lt, { CUDA_HOME: cudaHome, NCCL_HOME: join(dir, "nowhere") }, []);
  assert.equal(c.cuda, true);
  assert.deepEqual(c.ncclIncludes, []);
  assert.equal(c.notes.length, 1);
  assert.match(c.notes[0], /no NCCL in this build: nccl\.h not found/);
  // with NCCL_HOME pointing at it, both folders are used
  touch(join(dir, "nccl", "include", "nccl.h"));
  assert.deepEqual(libtorchConfig(lt, { CUDA_HOME: cudaHome, NCCL_HOME: join(dir, "nccl") }, []).ncclIncludes, [join(cudaHome, "include"), join(dir, "nccl", "include")]);
});
