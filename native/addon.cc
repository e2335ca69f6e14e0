// The lsmseg native addon: a thin layer over libtorch. All policy lives in TypeScript (src/torch).
#include "common.h"
#include "malloc_tuning.h"

namespace lsm {
void initProfiler(Napi::Env env, Napi::Object exports);  // native/profiler.cc
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
  bool tuned = lsm::tuneMalloc();
  lsm::initTensor(env, exports);
  lsm::initOps(env, exports);
  lsm::initAutograd(env, exports);
  lsm::initOptim(env, exports);
  lsm::initDist(env, exports);
  lsm::initProfiler(env, exports);
  exports.Set("mallocTuned", Napi::Boolean::New(env, tuned));
  exports.Set("mallocTrim", Napi::Function::New(env, mallocTrim, "mallocTrim"));
  return exports;
}

NODE_API_MODULE(lsmseg_native, InitAddon)
