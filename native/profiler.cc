// A per-operator profile over libtorch's RecordFunction callbacks (the hooks PyTorch's own profiler uses):
// every dispatcher call and every autograd backward node made on the thread that started the profile is
// timed, and the totals are kept per name: calls, total time, and self time (total minus the time of the
// operators it called). Work that an operator hands to its intra-op worker threads counts in its own time.
// The callback API (ATen/record_function.h) is the same in libtorch 1.13 and 2.x.
#include "common.h"
#include <ATen/record_function.h>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace lsm {

namespace {

struct Stat {
  int64_t calls = 0;
  int64_t totalNs = 0;
  int64_t selfNs = 0;
};

struct Frame : at::ObserverContext {
  int64_t startNs = 0;
  int64_t childNs = 0;
  Frame* parent = nullptr;
};

std::mutex statsMutex;
std::unordered_map<std::string, Stat> stats;
std::thread::id profiledThread;
at::CallbackHandle handle = at::INVALID_CALLBACK_HANDLE;
thread_local Frame* top = nullptr;

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::unique_ptr<at::ObserverContext> onStart(const at::RecordFunction&) {
  if (std::this_thread::get_id() != profiledThread) return nullptr;
  auto f = std::make_unique<Frame>();
  f->parent = top;
  top = f.get();
  f->startNs = nowNs();
  return f;
}

void onEnd(const at::RecordFunction& fn, at::ObserverContext* ctx) {
  auto* f = static_cast<Frame*>(ctx);
  if (f == nullptr) return;
  int64_t dur = nowNs() - f->startNs;
  top = f->parent;
  if (top != nullptr) top->childNs += dur;
  std::lock_guard<std::mutex> lock(statsMutex);
  Stat& s = stats[fn.name()];
  s.calls += 1;
  s.totalNs += dur;
  s.selfNs += dur - f->childNs;
}

// profilerStart(): clears the totals and starts timing the calling thread's operators.
Napi::Value profilerStart(const Napi::CallbackInfo& info) {
  if (handle != at::INVALID_CALLBACK_HANDLE) throw Napi::Error::New(info.Env(), "profilerStart: a profile is already running");
  {
    std::lock_guard<std::mutex> lock(statsMutex);
    stats.clear();
  }
  profiledThread = std::this_thread::get_id();
  top = nullptr;
  handle = at::addGlobalCallback(at::RecordFunctionCallback(onStart, onEnd));
  return info.Env().Undefined();
}

// profilerStop(): [{ name, calls, totalUs, selfUs }] for every operator seen since profilerStart.
Napi::Value profilerStop(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (handle == at::INVALID_CALLBACK_HANDLE) throw Napi::Error::New(env, "profilerStop: no profile is running");
  at::removeCallback(handle);
  handle = at::INVALID_CALLBACK_HANDLE;
  top = nullptr;
  std::lock_guard<std::mutex> lock(statsMutex);
  auto out = Napi::Array::New(env, stats.size());
  uint32_t i = 0;
  for (const auto& [name, s] : stats) {
    auto o = Napi::Object::New(env);
    o.Set("name", name);
    o.Set("calls", Napi::Number::New(env, static_cast<double>(s.calls)));
    o.Set("totalUs", Napi::Number::New(env, s.totalNs / 1e3));
    o.Set("selfUs", Napi::Number::New(env, s.selfNs / 1e3));
    out.Set(i++, o);
  }
  stats.clear();
  return out;
}

}  // namespace

void initProfiler(Napi::Env env, Napi::Object exports) {
  LSM_EXPORT(exports, "profilerStart", profilerStart);
  LSM_EXPORT(exports, "profilerStop", profilerStop);
}

}  // namespace lsm
