// Every libtorch operator through one door: the dispatcher. JS names an operator and its overload
// ("aten::conv3d", ""), gets a handle once, then calls it with arguments in schema order. The schema
// decides how each JS value becomes an IValue, so autograd, autocast and device dispatch all apply
// exactly as they do for PyTorch's own calls.
#include "common.h"
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/jit_type.h>
#include <ATen/core/function_schema.h>
#include <ATen/core/Generator.h>
#include <ATen/core/stack.h>
#include <ATen/CPUGeneratorImpl.h>
#include <cmath>

namespace lsm {

struct OpBox {
  Tag tag = Tag::Op;
  c10::OperatorHandle op;
  explicit OpBox(c10::OperatorHandle h) : op(std::move(h)) {}
};

struct GeneratorBox {
  Tag tag = Tag::Generator;
  at::Generator gen;
};

at::Generator& unwrapGenerator(const Napi::Value& v) {
  return unwrapTagged<GeneratorBox>(v, Tag::Generator, "generator")->gen;
}

Napi::Value wrapGenerator(Napi::Env env, at::Generator g) {
  auto* b = new GeneratorBox();
  b->gen = std::move(g);
  return Napi::External<GeneratorBox>::New(env, b, [](Napi::Env, GeneratorBox* b) { delete b; });
}

static std::string argError(const c10::FunctionSchema& s, const c10::Argument& a, const std::string& msg) {
  return s.name() + (s.overload_name().empty() ? "" : "." + s.overload_name()) + ": argument '" + a.name() + "' " + msg;
}

static c10::IValue toIValue(const Napi::Value& v, const c10::TypePtr& type, const c10::Argument& arg, const c10::FunctionSchema& s) {
  auto env = v.Env();
  auto fail = [&](const std::string& m) { return Napi::TypeError::New(env, argError(s, arg, m)); };
  if (v.IsUndefined() || v.IsNull()) {
    if (type->kind() == c10::TypeKind::OptionalType) return c10::IValue();
    throw fail("must not be null (expected " + type->str() + ")");
  }
  switch (type->kind()) {
    case c10::TypeKind::OptionalType:
      return toIValue(v, type->expectRef<c10::OptionalType>().getElementType(), arg, s);
    case c10::TypeKind::TensorType:
      if (!v.IsExternal()) throw fail("expected a tensor");
      return unwrap(v, arg.name().c_str());
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
      if (!v.IsNumber()) throw fail("expected an integer");
      return v.As<Napi::Number>().Int64Value();
    case c10::TypeKind::FloatType:
      if (!v.IsNumber()) throw fail("expected a number");
      return v.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) throw fail("expected a boolean");
      return v.As<Napi::Boolean>().Value();
    case c10::TypeKind::NumberType: {
      if (v.IsBoolean()) return c10::Scalar(v.As<Napi::Boolean>().Value());
      if (!v.IsNumber()) throw fail("expected a number");
      double d = v.As<Napi::Number>().DoubleValue();
      if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.0e15) return c10::Scalar(static_cast<int64_t>(d));
      return c10::Scalar(d);
    }
    case c10::TypeKind::StringType:
      if (!v.IsString()) throw fail("expected a string");
      return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) throw fail("expected a device string such as 'cpu' or 'cuda:0'");
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::GeneratorType:
      return unwrapGenerator(v);
    case c10::TypeKind::ListType: {
      auto elem = type->expectRef<c10::ListType>().getElementType();
      auto ek = elem->kind();
      if (ek == c10::TypeKind::IntType || ek == c10::TypeKind::SymIntType) {
        if (v.IsNumber() && arg.N()) return c10::List<int64_t>(std::vector<int64_t>(*arg.N(), v.As<Napi::Number>().Int64Value()));
        return c10::List<int64_t>(toIntVec(v, arg.name().c_str()));
      }
      if (!v.IsArray()) throw fail("expected an array (" + type->str() + ")");
      auto a = v.As<Napi::Array>();
      if (ek == c10::TypeKind::FloatType) {
        c10::List<double> l;
        for (uint32_t i = 0; i < a.Length(); i++) l.push_back(toDouble(a.Get(i), arg.name().c_str()));
        return l;
      }
      if (ek == c10::TypeKind::BoolType) {
        c10::List<bool> l;
        for (uint32_t i = 0; i < a.Length(); i++) l.push_back(toBool(a.Get(i), arg.name().c_str()));
        return l;
      }
      if (ek == c10::TypeKind::TensorType) {
        c10::List<at::Tensor> l;
        for (uint32_t i = 0; i < a.Length(); i++) l.push_back(unwrap(a.Get(i), arg.name().c_str()));
        return l;
      }
      if (ek == c10::TypeKind::OptionalType) {
        c10::List<c10::optional<at::Tensor>> l;
        for (uint32_t i = 0; i < a.Length(); i++) {
          auto e = a.Get(i);
          if (e.IsNull() || e.IsUndefined()) l.push_back(c10::nullopt);
          else l.push_back(unwrap(e, arg.name().c_str()));
        }
        return l;
      }
      throw fail("has list type " + type->str() + ", which the bindings do not convert");
    }
    default:
      throw fail("has type " + type->str() + ", which the bindings do not convert");
  }
}

static Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return wrap(env, v.toTensor());
  if (v.isTensorList()) {
    auto l = v.toTensorList();
    auto a = Napi::Array::New(env, l.size());
    for (size_t i = 0; i < l.size(); i++) a.Set(static_cast<uint32_t>(i), wrap(env, l.get(i)));
    return a;
  }
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isScalar()) {
    auto s = v.toScalar();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
    return Napi::Number::New(env, s.toDouble());
  }
  if (v.isTuple()) {
    auto& el = v.toTupleRef().elements();
    auto a = Napi::Array::New(env, el.size());
    for (size_t i = 0; i < el.size(); i++) a.Set(static_cast<uint32_t>(i), fromIValue(env, el[i]));
    return a;
  }
  if (v.isIntList()) {
    auto l = v.toIntList();
    auto a = Napi::Array::New(env, l.size());
    for (size_t i = 0; i < l.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(l.get(i))));
    return a;
  }
  throw Napi::Error::New(env, "an operator returned a value of kind " + v.tagKind() + ", which the bindings do not convert");
}

// op(name, overload): a handle to one operator overload, e.g. op("aten::conv3d", "").
static Napi::Value opHandle(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto name = info[0].As<Napi::String>().Utf8Value();
  auto overload = info[1].As<Napi::String>().Utf8Value();
  auto h = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!h) throw Napi::Error::New(env, "libtorch has no operator " + name + (overload.empty() ? "" : "." + overload));
  return Napi::External<OpBox>::New(env, new OpBox(*h), [](Napi::Env, OpBox* b) { delete b; });
}

// call(handle, ...args): runs the operator; arguments in schema order, undefined for defaults.
static Napi::Value callImpl(const Napi::CallbackInfo& info, bool discard) {
  auto env = info.Env();
  auto* b = unwrapTagged<OpBox>(info[0], Tag::Op, "operator");
  const auto& schema = b->op.schema();
  const auto& args = schema.arguments();
  size_t given = info.Length() - 1;
  if (given > args.size()) {
    throw Napi::TypeError::New(env, schema.name() + ": expected at most " + std::to_string(args.size()) + " arguments, got " + std::to_string(given));
  }
  torch::jit::Stack stack;
  stack.reserve(args.size());
  for (size_t i = 0; i < args.size(); i++) {
    const auto& a = args[i];
    Napi::Value v = i < given ? info[i + 1] : env.Undefined();
    if (v.IsUndefined() && a.default_value()) {
      stack.push_back(*a.default_value());
    } else if (v.IsUndefined() && a.type()->kind() != c10::TypeKind::OptionalType) {
      throw Napi::TypeError::New(env, argError(schema, a, "is required"));
    } else {
      stack.push_back(toIValue(v, a.type(), a, schema));
    }
  }
  b->op.callBoxed(&stack);
  if (discard || stack.empty()) return env.Undefined();
  if (stack.size() == 1) return fromIValue(env, stack[0]);
  auto out = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) out.Set(static_cast<uint32_t>(i), fromIValue(env, stack[i]));
  return out;
}

static Napi::Value call(const Napi::CallbackInfo& info) { return callImpl(info, false); }

// callVoid(handle, ...args): as call, for in-place operators whose result JS already holds.
static Napi::Value callVoid(const Napi::CallbackInfo& info) { return callImpl(info, true); }

// schemas(name): every overload's schema text, for finding the right overload while developing.
static Napi::Value schemas(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto want = info[0].As<Napi::String>().Utf8Value();
  auto out = Napi::Array::New(env);
  uint32_t k = 0;
  for (const auto& n : c10::Dispatcher::singleton().getAllOpNames()) {
    if (n.name != want) continue;
    auto h = c10::Dispatcher::singleton().findSchema(n);
    if (h) out.Set(k++, Napi::String::New(env, c10::toString(h->schema())));
  }
  return out;
}

static Napi::Value newGenerator(const Napi::CallbackInfo& info) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(toInt(info[0], "seed")));
  return wrapGenerator(info.Env(), g);
}

void initOps(Napi::Env env, Napi::Object exports) {
  LSM_EXPORT(exports, "op", opHandle);
  LSM_EXPORT(exports, "call", call);
  LSM_EXPORT(exports, "callVoid", callVoid);
  LSM_EXPORT(exports, "schemas", schemas);
  LSM_EXPORT(exports, "newGenerator", newGenerator);
}

}  // namespace lsm
