// Module entry: installs the caching allocator and registers every op family.
#include "common.h"

namespace aten_addon {

at::Tensor& T(const Napi::Value& v) {
  if (!v.IsExternal()) throw std::invalid_argument("expected a native tensor handle");
  auto* t = v.As<Napi::External<at::Tensor>>().Data();
  if (!t->defined()) throw std::invalid_argument("tensor handle used after it was freed");
  return *t;
}

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  auto* p = new at::Tensor(std::move(t));
  return Napi::External<at::Tensor>::New(env, p, [](Napi::Env, at::Tensor* q) { delete q; });
}

bool IsScalar(const Napi::Value& v) { return v.IsNumber() || v.IsBoolean(); }

at::Scalar S(const Napi::Value& v) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) throw std::invalid_argument("expected a number");
  return at::Scalar(v.As<Napi::Number>().DoubleValue());
}

std::vector<int64_t> Ints(const Napi::Value& v) {
  if (!v.IsArray()) throw std::invalid_argument("expected an array of integers");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return out;
}
int64_t Int(const Napi::Value& v) {
  if (!v.IsNumber()) throw std::invalid_argument("expected an integer");
  return v.As<Napi::Number>().Int64Value();
}
double Num(const Napi::Value& v) {
  if (!v.IsNumber()) throw std::invalid_argument("expected a number");
  return v.As<Napi::Number>().DoubleValue();
}
bool Bool(const Napi::Value& v) { return v.ToBoolean().Value(); }
std::string Str(const Napi::Value& v) {
  if (!v.IsString()) throw std::invalid_argument("expected a string");
  return v.As<Napi::String>().Utf8Value();
}
Napi::Array IntArray(Napi::Env env, at::IntArrayRef v) {
  auto a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(i, Napi::Number::New(env, static_cast<double>(v[i])));
  return a;
}

void Register(Napi::Env env, Napi::Object exports, const char* name, Fn fn) {
  std::string n(name);
  exports.Set(name, Napi::Function::New(env, [fn, n](const Napi::CallbackInfo& info) -> Napi::Value {
    try {
      return fn(info);
    } catch (const Napi::Error&) {
      throw;
    } catch (const c10::Error& e) {
      throw Napi::Error::New(info.Env(), "aten." + n + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), "aten." + n + ": " + e.what());
    }
  }, name));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCachingAllocator();
  InitTensor(env, exports);
  InitElementwise(env, exports);
  InitReduce(env, exports);
  InitConv(env, exports);
  InitPool(env, exports);
  InitMatmul(env, exports);
  InitNorm(env, exports);
  InitLayout(env, exports);
  InitImage(env, exports);
  InitGrad(env, exports);
  return exports;
}

}  // namespace aten_addon

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return aten_addon::Init(env, exports); }

NODE_API_MODULE(aten, InitAddon)
