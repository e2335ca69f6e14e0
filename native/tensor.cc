// Tensor handles: wrapping at::Tensor for JS, copying data in and out of typed arrays, disposal,
// and metadata. Every tensor op itself goes through the dispatcher (ops.cc).
#include "common.h"
#include <atomic>
#include <cstring>

namespace lsm {

static std::atomic<int64_t> liveTensors{0};
static std::atomic<int64_t> liveBytes{0};

static void release(Napi::Env env, TensorBox* b) {
  if (b->t.defined()) {
    liveTensors--;
    liveBytes -= b->reported;
    if (b->reported) Napi::MemoryManagement::AdjustExternalMemory(env, -b->reported);
    b->reported = 0;
    b->t.reset();
  }
}

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  auto* b = new TensorBox();
  b->t = std::move(t);
  if (b->t.defined()) {
    liveTensors++;
    b->reported = tensorBytes(b->t);
    liveBytes += b->reported;
    if (b->reported) Napi::MemoryManagement::AdjustExternalMemory(env, b->reported);
  }
  return Napi::External<TensorBox>::New(env, b, [](Napi::Env env, TensorBox* b) {
    release(env, b);
    delete b;
  });
}

TensorBox* box(const Napi::Value& v, const char* what) {
  return unwrapTagged<TensorBox>(v, Tag::Tensor, what);
}

at::Tensor& unwrap(const Napi::Value& v, const char* what) {
  auto* b = box(v, what);
  if (!b->t.defined()) throw Napi::Error::New(v.Env(), std::string(what) + " has been disposed (freed) and can no longer be used");
  return b->t;
}

std::vector<int64_t> toIntVec(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of integers");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out[i] = toInt(a.Get(i), what);
  return out;
}

std::vector<at::Tensor> toTensorVec(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of tensors");
  auto a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(unwrap(a.Get(i), what));
  return out;
}

at::ScalarType toDtype(const Napi::Value& v) {
  return static_cast<at::ScalarType>(toInt(v, "dtype"));
}

Napi::Array wrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto a = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) a.Set(i, wrap(env, ts[i]));
  return a;
}

// fromBuffer(typedArray, shape, dtype): a new CPU tensor holding a copy of the bytes.
static Napi::Value fromBuffer(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "fromBuffer: expected a typed array");
  auto ta = info[0].As<Napi::TypedArray>();
  auto shape = toIntVec(info[1], "shape");
  auto dtype = toDtype(info[2]);
  auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
  size_t want = static_cast<size_t>(t.numel()) * t.element_size();
  if (ta.ByteLength() != want) {
    throw Napi::RangeError::New(env, "fromBuffer: the array holds " + std::to_string(ta.ByteLength()) + " bytes but shape " +
                                         c10::str(t.sizes()) + " of " + c10::toString(dtype) + " needs " + std::to_string(want));
  }
  auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (want) std::memcpy(t.data_ptr(), src, want);
  return wrap(env, t);
}

// toBuffer(t): an ArrayBuffer with a copy of the tensor's elements in row-major order.
static Napi::Value toBuffer(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto t = unwrap(info[0]).detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  auto buf = Napi::ArrayBuffer::New(env, n);
  if (n) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
}

// copyInto(t, typedArray): copies the tensor's elements into an existing typed array (no allocation).
static Napi::Value copyInto(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto t = unwrap(info[0]).detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  auto ta = info[1].As<Napi::TypedArray>();
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  if (ta.ByteLength() != n) throw Napi::RangeError::New(env, "copyInto: target holds " + std::to_string(ta.ByteLength()) + " bytes, tensor has " + std::to_string(n));
  if (n) std::memcpy(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), t.data_ptr(), n);
  return env.Undefined();
}

static Napi::Value dispose(const Napi::CallbackInfo& info) {
  release(info.Env(), box(info[0]));
  return info.Env().Undefined();
}

static Napi::Value isDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !box(info[0])->t.defined());
}

// meta(t): [shape, dtype, device, requiresGrad]
static Napi::Value meta(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& t = unwrap(info[0]);
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  auto out = Napi::Array::New(env, 4);
  out.Set(0u, shape);
  out.Set(1u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
  out.Set(2u, Napi::String::New(env, t.device().str()));
  out.Set(3u, Napi::Boolean::New(env, t.requires_grad()));
  return out;
}

static Napi::Value strides(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& t = unwrap(info[0]);
  auto a = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.stride(i))));
  return a;
}

static Napi::Value isContiguous(const Napi::CallbackInfo& info) {
  auto& t = unwrap(info[0]);
  auto fmt = info.Length() > 1 ? static_cast<at::MemoryFormat>(toInt(info[1], "memoryFormat")) : at::MemoryFormat::Contiguous;
  return Napi::Boolean::New(info.Env(), t.is_contiguous(fmt));
}

// sameStorage(a, b): whether two handles view the same memory (for tests of views).
static Napi::Value sameStorage(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrap(info[0]).is_alias_of(unwrap(info[1])));
}

static Napi::Value liveStats(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("tensors", Napi::Number::New(env, static_cast<double>(liveTensors.load())));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(liveBytes.load())));
  return o;
}

void initTensor(Napi::Env env, Napi::Object exports) {
  LSM_EXPORT(exports, "fromBuffer", fromBuffer);
  LSM_EXPORT(exports, "toBuffer", toBuffer);
  LSM_EXPORT(exports, "copyInto", copyInto);
  LSM_EXPORT(exports, "dispose", dispose);
  LSM_EXPORT(exports, "isDisposed", isDisposed);
  LSM_EXPORT(exports, "meta", meta);
  LSM_EXPORT(exports, "strides", strides);
  LSM_EXPORT(exports, "isContiguous", isContiguous);
  LSM_EXPORT(exports, "sameStorage", sameStorage);
  LSM_EXPORT(exports, "liveStats", liveStats);
}

}  // namespace lsm
