// The lsmseg native addon: a thin layer over libtorch. All policy lives in TypeScript (src/torch).
#include "common.h"

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  lsm::initTensor(env, exports);
  lsm::initOps(env, exports);
  lsm::initAutograd(env, exports);
  lsm::initOptim(env, exports);
  return exports;
}

NODE_API_MODULE(lsmseg_native, InitAddon)
