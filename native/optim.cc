// Optimizers are libtorch's own (torch::optim::SGD, torch::optim::AdamW); JS holds a handle, sets
// the learning rate each step (schedules live in TypeScript) and saves/restores the per-parameter state.
#include "common.h"
#include <torch/optim/sgd.h>
#include <torch/optim/adamw.h>
#include <torch/nn/utils/clip_grad.h>
#include <memory>
#include <sstream>
#include <type_traits>

namespace lsm {

struct OptimBox {
  Tag tag = Tag::Optim;
  std::string kind;
  std::vector<at::Tensor> params;
  std::unique_ptr<torch::optim::Optimizer> opt;
};

static OptimBox* unwrapOptim(const Napi::Value& v) { return unwrapTagged<OptimBox>(v, Tag::Optim, "optimizer"); }

static double numOr(const Napi::Object& o, const char* key, double fallback) {
  auto v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}
static bool boolOr(const Napi::Object& o, const char* key, bool fallback) {
  auto v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

// libtorch keys an optimizer's per-parameter state by the parameter's TensorImpl address: written as a string
// in 1.13 (c10::guts::to_string, an ostream of the pointer), the pointer itself (void*) from 2.x on. The key type
// is read from the map, so both build without a version check.
using StateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
template <typename Key>
static Key stateKey(at::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << impl;
    return s.str();
  } else {
    return impl;
  }
}
static StateMap::key_type keyOf(const at::Tensor& p) { return stateKey<StateMap::key_type>(p.unsafeGetTensorImpl()); }

// optimCreate(kind, params, options)
static Napi::Value optimCreate(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto kind = info[0].As<Napi::String>().Utf8Value();
  auto params = toTensorVec(info[1], "params");
  auto o = info[2].As<Napi::Object>();
  auto* b = new OptimBox();
  b->kind = kind;
  b->params = params;
  if (kind == "sgd") {
    torch::optim::SGDOptions opts(numOr(o, "lr", 0.01));
    opts.momentum(numOr(o, "momentum", 0)).dampening(numOr(o, "dampening", 0)).weight_decay(numOr(o, "weightDecay", 0)).nesterov(boolOr(o, "nesterov", false));
    b->opt = std::make_unique<torch::optim::SGD>(params, opts);
  } else if (kind == "adamw") {
    torch::optim::AdamWOptions opts(numOr(o, "lr", 1e-3));
    opts.betas(std::make_tuple(numOr(o, "beta1", 0.9), numOr(o, "beta2", 0.999))).eps(numOr(o, "eps", 1e-8)).weight_decay(numOr(o, "weightDecay", 1e-2)).amsgrad(boolOr(o, "amsgrad", false));
    b->opt = std::make_unique<torch::optim::AdamW>(params, opts);
  } else {
    delete b;
    throw Napi::Error::New(env, "unknown optimizer '" + kind + "' (expected 'sgd' or 'adamw')");
  }
  return Napi::External<OptimBox>::New(env, b, [](Napi::Env, OptimBox* b) { delete b; });
}

static Napi::Value optimStep(const Napi::CallbackInfo& info) {
  unwrapOptim(info[0])->opt->step();
  return info.Env().Undefined();
}

static Napi::Value optimZeroGrad(const Napi::CallbackInfo& info) {
  auto* b = unwrapOptim(info[0]);
  bool setToNone = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  for (auto& p : b->params) {
    auto& g = p.mutable_grad();
    if (!g.defined()) continue;
    if (setToNone) g.reset();
    else {
      if (g.grad_fn()) g = g.detach();
      else g.requires_grad_(false);
      g.zero_();
    }
  }
  return info.Env().Undefined();
}

static Napi::Value optimSetLr(const Napi::CallbackInfo& info) {
  auto* b = unwrapOptim(info[0]);
  double lr = toDouble(info[1], "lr");
  for (auto& g : b->opt->param_groups()) g.options().set_lr(lr);
  return info.Env().Undefined();
}

// optimGetState(h): one entry per parameter (null before the first step): an object of named tensors.
static Napi::Value optimGetState(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto* b = unwrapOptim(info[0]);
  auto& state = b->opt->state();
  auto out = Napi::Array::New(env, b->params.size());
  for (size_t i = 0; i < b->params.size(); i++) {
    auto it = state.find(keyOf(b->params[i]));
    if (it == state.end()) { out.Set(static_cast<uint32_t>(i), env.Null()); continue; }
    auto o = Napi::Object::New(env);
    if (b->kind == "sgd") {
      auto& s = static_cast<torch::optim::SGDParamState&>(*it->second);
      if (s.momentum_buffer().defined()) o.Set("momentum_buffer", wrap(env, s.momentum_buffer().clone()));
    } else {
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      o.Set("step", wrap(env, at::scalar_tensor(static_cast<double>(s.step()), at::kDouble)));
      o.Set("exp_avg", wrap(env, s.exp_avg().clone()));
      o.Set("exp_avg_sq", wrap(env, s.exp_avg_sq().clone()));
      if (s.max_exp_avg_sq().defined()) o.Set("max_exp_avg_sq", wrap(env, s.max_exp_avg_sq().clone()));
    }
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

static at::Tensor field(const Napi::Object& o, const char* key) {
  auto v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return at::Tensor();
  return unwrap(v, key).clone();
}

static Napi::Value optimSetState(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto* b = unwrapOptim(info[0]);
  auto a = info[1].As<Napi::Array>();
  if (a.Length() != b->params.size()) {
    throw Napi::Error::New(env, "optimizer state has " + std::to_string(a.Length()) + " entries, the optimizer has " + std::to_string(b->params.size()) + " parameters");
  }
  auto& state = b->opt->state();
  state.clear();
  for (uint32_t i = 0; i < a.Length(); i++) {
    auto v = a.Get(i);
    if (v.IsNull() || v.IsUndefined()) continue;
    auto o = v.As<Napi::Object>();
    if (b->kind == "sgd") {
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(field(o, "momentum_buffer"));
      state[keyOf(b->params[i])] = std::move(s);
    } else {
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      auto step = field(o, "step");
      s->step(step.defined() ? static_cast<int64_t>(step.item<double>()) : 0);
      s->exp_avg(field(o, "exp_avg"));
      s->exp_avg_sq(field(o, "exp_avg_sq"));
      auto m = field(o, "max_exp_avg_sq");
      if (m.defined()) s->max_exp_avg_sq(m);
      state[keyOf(b->params[i])] = std::move(s);
    }
  }
  return env.Undefined();
}

// clipGradNorm(params, maxNorm, normType): scales gradients in place; returns the total norm before clipping.
static Napi::Value clipGradNorm(const Napi::CallbackInfo& info) {
  auto params = toTensorVec(info[0], "params");
  double maxNorm = toDouble(info[1], "maxNorm");
  double normType = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 2.0;
  double total = torch::nn::utils::clip_grad_norm_(params, maxNorm, normType);
  return Napi::Number::New(info.Env(), total);
}

void initOptim(Napi::Env env, Napi::Object exports) {
  LSM_EXPORT(exports, "optimCreate", optimCreate);
  LSM_EXPORT(exports, "optimStep", optimStep);
  LSM_EXPORT(exports, "optimZeroGrad", optimZeroGrad);
  LSM_EXPORT(exports, "optimSetLr", optimSetLr);
  LSM_EXPORT(exports, "optimGetState", optimGetState);
  LSM_EXPORT(exports, "optimSetState", optimSetState);
  LSM_EXPORT(exports, "clipGradNorm", clipGradNorm);
}

}  // namespace lsm
