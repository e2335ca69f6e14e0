// Shared helpers of the native layer: handles for tensors and other libtorch objects, argument
// conversion, and the guard that turns every C++ exception into a JS Error.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <string>
#include <vector>

namespace lsm {

// Every External we hand to JS starts with a tag, so a handle of the wrong kind is an error, not a crash.
enum class Tag : uint32_t { Tensor = 0x7e5a01, Op = 0x7e5a02, Optim = 0x7e5a03, Generator = 0x7e5a04, Group = 0x7e5a05, GradSync = 0x7e5a06 };

struct TensorBox {
  Tag tag = Tag::Tensor;
  at::Tensor t;
  int64_t reported = 0;  // bytes reported to V8 via AdjustExternalMemory
};

inline int64_t tensorBytes(const at::Tensor& t) {
  if (!t.defined()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

Napi::Value wrap(Napi::Env env, at::Tensor t);
at::Tensor& unwrap(const Napi::Value& v, const char* what = "tensor");
TensorBox* box(const Napi::Value& v, const char* what = "tensor");

template <typename T>
T* unwrapTagged(const Napi::Value& v, Tag tag, const char* what) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), std::string("expected a ") + what + " handle");
  auto* p = v.As<Napi::External<T>>().Data();
  if (p == nullptr || p->tag != tag) throw Napi::TypeError::New(v.Env(), std::string("expected a ") + what + " handle, got another kind");
  return p;
}

inline int64_t toInt(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a number");
  return v.As<Napi::Number>().Int64Value();
}
inline double toDouble(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}
inline bool toBool(const Napi::Value& v, const char* what) {
  if (!v.IsBoolean()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}
std::vector<int64_t> toIntVec(const Napi::Value& v, const char* what);
std::vector<at::Tensor> toTensorVec(const Napi::Value& v, const char* what);
at::ScalarType toDtype(const Napi::Value& v);
Napi::Array wrapList(Napi::Env env, const std::vector<at::Tensor>& ts);

// Runs a native function with every C++ exception turned into a JS Error carrying libtorch's message.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guard(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), "unknown native error");
  }
}

#define LSM_EXPORT(exports, name, fn) exports.Set(name, Napi::Function::New(env, ::lsm::guard<fn>, name))

void initTensor(Napi::Env env, Napi::Object exports);
void initOps(Napi::Env env, Napi::Object exports);
void initAutograd(Napi::Env env, Napi::Object exports);
void initOptim(Napi::Env env, Napi::Object exports);
void initDist(Napi::Env env, Napi::Object exports);

}  // namespace lsm
