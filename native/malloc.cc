// A second, tiny addon without libtorch: the heap settings of malloc_tuning.h for the code that never loads the
// engine (evaluation, curation, conversion), where V8's ArrayBuffers are the large allocations.
#include <napi.h>
#include "malloc_tuning.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tuned", Napi::Boolean::New(env, lsm::tuneMalloc()));
  return exports;
}

NODE_API_MODULE(lsmseg_malloc, Init)
