// A second, tiny addon without libtorch: the heap settings of malloc_tuning.h for the code that never loads the
// engine (evaluation, curation, conversion), where V8's ArrayBuffers are the large allocations; and glibc's count
// of the bytes malloc has handed out and not had back, which the memory tests bound (resident memory also holds
// the free pages that the untrimmed heap keeps, so one transient peak anywhere in the process reads as growth).
#include <napi.h>
#include "malloc_tuning.h"

static Napi::Value HeapInUse(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  // uordblks: bytes in use from the arenas; hblkhd: bytes in blocks that malloc mmapped on their own.
  return Napi::Number::New(info.Env(), static_cast<double>(m.uordblks + m.hblkhd));
#else
  return info.Env().Null();
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tuned", Napi::Boolean::New(env, lsm::tuneMalloc()));
  exports.Set("heapInUse", Napi::Function::New(env, HeapInUse, "heapInUse"));
  return exports;
}

NODE_API_MODULE(lsmseg_malloc, Init)
