// Autograd, grad mode, autocast, threads and random state: the engine-wide switches.
#include "common.h"
#include "dist.h"
#include <torch/cuda.h>
#include <ATen/autocast_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/autograd/function.h>
#include <torch/version.h>

namespace lsm {

static Napi::Value backward(const Napi::CallbackInfo& info) {
  auto& t = unwrap(info[0], "loss");
  std::vector<at::Tensor> grads;
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) grads.push_back(unwrap(info[1], "gradient"));
  bool retain = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  torch::autograd::backward({t}, grads, retain, false);
  return info.Env().Undefined();
}

// autogradGrad(outputs, inputs, gradOutputs?, createGraph): torch.autograd.grad
static Napi::Value autogradGrad(const Napi::CallbackInfo& info) {
  auto outs = toTensorVec(info[0], "outputs");
  auto ins = toTensorVec(info[1], "inputs");
  std::vector<at::Tensor> gos;
  if (info.Length() > 2 && info[2].IsArray()) gos = toTensorVec(info[2], "gradOutputs");
  bool create = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  auto g = torch::autograd::grad(outs, ins, gos, create, create, true);
  return wrapList(info.Env(), g);
}

static Napi::Value getGrad(const Napi::CallbackInfo& info) {
  auto& t = unwrap(info[0]);
  const auto& g = t.grad();
  if (!g.defined()) return info.Env().Null();
  return wrap(info.Env(), g);
}

static Napi::Value setGrad(const Napi::CallbackInfo& info) {
  auto& t = unwrap(info[0]);
  if (info[1].IsNull() || info[1].IsUndefined()) t.mutable_grad().reset();
  else t.mutable_grad() = unwrap(info[1], "grad");
  return info.Env().Undefined();
}

static Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) {
  unwrap(info[0]).set_requires_grad(toBool(info[1], "requiresGrad"));
  return info.Env().Undefined();
}

static Napi::Value isLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).is_leaf());
}

static Napi::Value gradFnName(const Napi::CallbackInfo& info) {
  auto& t = unwrap(info[0]);
  auto fn = t.grad_fn();
  if (!fn) return info.Env().Null();
  return Napi::String::New(info.Env(), fn->name());
}

static Napi::Value retainGrad(const Napi::CallbackInfo& info) {
  unwrap(info[0]).retain_grad();
  return info.Env().Undefined();
}

static Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(toBool(info[0], "enabled"));
  return Napi::Boolean::New(info.Env(), prev);
}

static Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

// libtorch 2.4 made autocast's state one device-generic API (at::autocast::is_autocast_enabled(DeviceType), ...)
// and deprecated the per-device calls, which print a warning on every use; 1.13 to 2.3 have only the latter.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
static bool autocastEnabled(at::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
static at::ScalarType autocastDtype(at::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
static void setAutocast(at::DeviceType d, bool enabled, at::ScalarType dtype) {
  at::autocast::set_autocast_enabled(d, enabled);
  at::autocast::set_autocast_dtype(d, dtype);
}
#else
static bool autocastEnabled(at::DeviceType d) { return d == at::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled(); }
static at::ScalarType autocastDtype(at::DeviceType d) {
  return d == at::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
static void setAutocast(at::DeviceType d, bool enabled, at::ScalarType dtype) {
  if (d == at::kCPU) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
}
#endif

static at::DeviceType autocastDevice(const Napi::Value& v) {
  auto device = v.As<Napi::String>().Utf8Value();
  if (device == "cpu") return at::kCPU;
  if (device == "cuda") return at::kCUDA;
  throw Napi::Error::New(v.Env(), "autocast: device must be 'cpu' or 'cuda', got '" + device + "'");
}

// autocastEnter(deviceType, dtype): enters one level of autocast; returns the previous state
// [enabled, dtype] so that autocastExit can restore it exactly (scopes nest).
static Napi::Value autocastEnter(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto device = autocastDevice(info[0]);
  auto dtype = toDtype(info[1]);
  auto prev = Napi::Array::New(env, 2);
  prev.Set(0u, Napi::Boolean::New(env, autocastEnabled(device)));
  prev.Set(1u, Napi::Number::New(env, static_cast<int>(autocastDtype(device))));
  setAutocast(device, true, dtype);
  at::autocast::increment_nesting();
  return prev;
}

static Napi::Value autocastExit(const Napi::CallbackInfo& info) {
  auto device = autocastDevice(info[0]);
  setAutocast(device, toBool(info[1], "enabled"), toDtype(info[2]));
  // Leaving the outermost scope drops the cache of casted weights, as torch.autocast does; keeping it
  // would reuse stale copies after the optimizer changes the weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  return info.Env().Undefined();
}

static Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(static_cast<int>(toInt(info[0], "threads")));
  return info.Env().Undefined();
}

static Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  at::manual_seed(static_cast<uint64_t>(toInt(info[0], "seed")));
  return info.Env().Undefined();
}

// The default CPU generator's state as a uint8 tensor, and back (for checkpoints).
static Napi::Value getRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return wrap(info.Env(), gen.get_state());
}

static Napi::Value setRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(unwrap(info[0], "rng state"));
  return info.Env().Undefined();
}

static Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  o.Set("cuda", Napi::Boolean::New(env, at::hasCUDA()));
  o.Set("cudaDevices", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
  o.Set("nccl", Napi::Boolean::New(env, hasNccl()));
  o.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  o.Set("parallel", Napi::String::New(env, at::get_parallel_info()));
  o.Set("config", Napi::String::New(env, at::show_config()));
  return o;
}

// cudaSynchronize(): waits for every queued kernel of the current GPU (benchmarks time GPU work with it);
// nothing to wait for without CUDA.
static Napi::Value cudaSynchronize(const Napi::CallbackInfo& info) {
  if (torch::cuda::is_available()) torch::cuda::synchronize();
  return info.Env().Undefined();
}

// setMkldnnEnabled(on): whether CPU convolutions may use oneDNN (torch.backends.mkldnn.enabled); returns the previous
// setting. For measuring what oneDNN brings on a given libtorch build (bench/cpu-ops.ts).
static Napi::Value setMkldnnEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::globalContext().userEnabledMkldnn();
  at::globalContext().setUserEnabledMkldnn(toBool(info[0], "enabled"));
  return Napi::Boolean::New(info.Env(), prev);
}

void initAutograd(Napi::Env env, Napi::Object exports) {
  LSM_EXPORT(exports, "backward", backward);
  LSM_EXPORT(exports, "autogradGrad", autogradGrad);
  LSM_EXPORT(exports, "getGrad", getGrad);
  LSM_EXPORT(exports, "setGrad", setGrad);
  LSM_EXPORT(exports, "setRequiresGrad", setRequiresGrad);
  LSM_EXPORT(exports, "isLeaf", isLeaf);
  LSM_EXPORT(exports, "gradFnName", gradFnName);
  LSM_EXPORT(exports, "retainGrad", retainGrad);
  LSM_EXPORT(exports, "setGradEnabled", setGradEnabled);
  LSM_EXPORT(exports, "isGradEnabled", isGradEnabled);
  LSM_EXPORT(exports, "autocastEnter", autocastEnter);
  LSM_EXPORT(exports, "autocastExit", autocastExit);
  LSM_EXPORT(exports, "setNumThreads", setNumThreads);
  LSM_EXPORT(exports, "getNumThreads", getNumThreads);
  LSM_EXPORT(exports, "manualSeed", manualSeed);
  LSM_EXPORT(exports, "getRngState", getRngState);
  LSM_EXPORT(exports, "setRngState", setRngState);
  LSM_EXPORT(exports, "buildInfo", buildInfo);
  LSM_EXPORT(exports, "cudaSynchronize", cudaSynchronize);
  LSM_EXPORT(exports, "setMkldnnEnabled", setMkldnnEnabled);
}

}  // namespace lsm
