// Tensor lifetime and the only two places data crosses between JS and ATen: upload and download.
#include <ATen/Parallel.h>

#include "common.h"

namespace aten_addon {
namespace {

std::atomic<int64_t> uploads{0}, downloads{0};

at::Tensor FromTyped(const Napi::TypedArray& a, const std::vector<int64_t>& shape) {
  at::ScalarType st;
  switch (a.TypedArrayType()) {
    case napi_float32_array: st = at::kFloat; break;
    case napi_int32_array: st = at::kInt; break;
    case napi_uint8_array: st = at::kBool; break;
    default: throw std::invalid_argument("unsupported typed array (float32, int32 and uint8 are supported)");
  }
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  if (numel != int64_t(a.ElementLength()))
    throw std::invalid_argument("shape does not match the number of values");
  auto* data = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  auto out = at::empty(shape, at::TensorOptions().dtype(st));
  if (numel) std::memcpy(out.data_ptr(), data, a.ByteLength());
  uploads++;
  return out;
}

}  // namespace

void InitTensor(Napi::Env env, Napi::Object exports) {
  // upload(typedArray, shape) -> handle (copies)
  Register(env, exports, "upload", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), FromTyped(info[0].As<Napi::TypedArray>(), Ints(info[1])));
  });
  // download(handle) -> Float32Array | Int32Array | Uint8Array (copies)
  Register(env, exports, "download", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto t = T(info[0]).contiguous();
    auto env = info.Env();
    size_t n = t.numel();
    downloads++;
    switch (t.scalar_type()) {
      case at::kFloat: {
        auto a = Napi::Float32Array::New(env, n);
        if (n) std::memcpy(a.Data(), t.data_ptr(), n * 4);
        return a;
      }
      case at::kInt: {
        auto a = Napi::Int32Array::New(env, n);
        if (n) std::memcpy(a.Data(), t.data_ptr(), n * 4);
        return a;
      }
      case at::kBool: {
        auto a = Napi::Uint8Array::New(env, n);
        if (n) std::memcpy(a.Data(), t.data_ptr(), n);
        return a;
      }
      default:
        throw std::invalid_argument(std::string("cannot download dtype ") + c10::toString(t.scalar_type()));
    }
  });
  Register(env, exports, "scalar", [](const Napi::CallbackInfo& info) {
    auto dt = Str(info[1]);
    auto st = dt == "int32" ? at::kInt : dt == "bool" ? at::kBool : at::kFloat;
    return Wrap(info.Env(), at::scalar_tensor(S(info[0]), at::TensorOptions().dtype(st)));
  });
  Register(env, exports, "free", [](const Napi::CallbackInfo& info) -> Napi::Value {
    if (info[0].IsExternal()) *info[0].As<Napi::External<at::Tensor>>().Data() = at::Tensor();
    return info.Env().Undefined();
  });
  Register(env, exports, "shape", [](const Napi::CallbackInfo& info) -> Napi::Value {
    return IntArray(info.Env(), T(info[0]).sizes());
  });
  Register(env, exports, "dtype", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto st = T(info[0]).scalar_type();
    const char* s = st == at::kFloat ? "float32" : st == at::kInt ? "int32" : st == at::kBool ? "bool" : "other";
    return Napi::String::New(info.Env(), s);
  });
  // reshape(handle, shape) -> view sharing storage (input is always contiguous)
  Register(env, exports, "reshape", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), T(info[0]).reshape(Ints(info[1])));
  });
  // cast(handle, dtype) with TF.js semantics: x != 0 -> bool; float -> int32 as JS stores a
  // number into an Int32Array (truncate, NaN/Inf -> 0, wrap modulo 2^32), where a plain C++
  // conversion is undefined for NaN and out-of-range values.
  Register(env, exports, "cast", [](const Napi::CallbackInfo& info) {
    auto& x = T(info[0]);
    auto dt = Str(info[1]);
    if (dt == "bool") return Wrap(info.Env(), x.ne(0));
    if (dt == "int32") {
      if (!x.is_floating_point()) return Wrap(info.Env(), x.to(at::kInt));
      auto d = x.to(at::kDouble).nan_to_num(0, 0, 0).trunc_().fmod_(4294967296.0);
      return Wrap(info.Env(), d.to(at::kLong).to(at::kInt));
    }
    return Wrap(info.Env(), x.to(at::kFloat));
  });
  Register(env, exports, "setNumThreads", [](const Napi::CallbackInfo& info) -> Napi::Value {
    at::set_num_threads(static_cast<int>(Int(info[0])));
    return info.Env().Undefined();
  });
  Register(env, exports, "getNumThreads", [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Napi::Number::New(info.Env(), at::get_num_threads());
  });
  Register(env, exports, "memory", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto o = Napi::Object::New(info.Env());
    o.Set("bytesInUse", Napi::Number::New(info.Env(), double(AllocatorBytesInUse())));
    o.Set("bytesCached", Napi::Number::New(info.Env(), double(AllocatorBytesCached())));
    o.Set("numAllocations", Napi::Number::New(info.Env(), double(AllocatorNumAllocations())));
    o.Set("uploads", Napi::Number::New(info.Env(), double(uploads.load())));
    o.Set("downloads", Napi::Number::New(info.Env(), double(downloads.load())));
    return o;
  });
  Register(env, exports, "emptyCache", [](const Napi::CallbackInfo& info) -> Napi::Value {
    AllocatorEmptyCache();
    return info.Env().Undefined();
  });
}

}  // namespace aten_addon
