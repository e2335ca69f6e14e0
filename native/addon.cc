// The lsmseg native addon: a thin layer over libtorch. All policy lives in TypeScript (src/torch).
#include "common.h"
#include <cstdlib>
#include <cstring>
#include <malloc.h>

// libtorch's CPU allocator is plain malloc. With glibc's defaults every activation larger than the
// mmap threshold (at most 32 MB) is a fresh mmap: each training step then page-faults its whole
// working set again (measured: 2.3 M minor faults and ~60 % of the time of an fp32 U-Net step).
// Serving large blocks from the heap and not trimming it keeps the pages mapped and reuses them,
// which is what PyTorch's own advice (jemalloc/tcmalloc) achieves. LSMSEG_MALLOC=default opts out.
static bool tuneMalloc() {
  const char* v = std::getenv("LSMSEG_MALLOC");
  if (v && std::strcmp(v, "default") == 0) return false;
#ifdef M_MMAP_MAX
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  return true;
#else
  return false;
#endif
}

// mallocTrim(): gives the heap's free pages back to the system (glibc's malloc_trim also releases free
// pages in the middle of the heap). For long jobs whose working set changes size from one unit of work to
// the next (out-of-core prediction's blocks), where the untrimmed heap would otherwise keep the peak.
static Napi::Value mallocTrim(const Napi::CallbackInfo& info) {
#ifdef M_MMAP_MAX
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  bool tuned = tuneMalloc();
  lsm::initTensor(env, exports);
  lsm::initOps(env, exports);
  lsm::initAutograd(env, exports);
  lsm::initOptim(env, exports);
  lsm::initDist(env, exports);
  exports.Set("mallocTuned", Napi::Boolean::New(env, tuned));
  exports.Set("mallocTrim", Napi::Function::New(env, mallocTrim, "mallocTrim"));
  return exports;
}

NODE_API_MODULE(lsmseg_native, InitAddon)
