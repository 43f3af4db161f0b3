// Shared helpers for the addon: tensor handles, argument conversion and error translation.
// Every exported function goes through Register(), which turns c10::Error and std::exception
// into a JS Error carrying ATen's message, so bad shapes never take the process down.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

namespace aten_addon {

using Fn = std::function<Napi::Value(const Napi::CallbackInfo&)>;

// A tensor handle is a JS External owning a heap at::Tensor. Free() releases the storage
// deterministically (tf.dispose); the finalizer only deletes the small wrapper.
at::Tensor& T(const Napi::Value& v);
Napi::Value Wrap(Napi::Env env, at::Tensor t);

// Handle or JS number (a scalar operand passed by value, never uploaded).
bool IsScalar(const Napi::Value& v);
at::Scalar S(const Napi::Value& v);

std::vector<int64_t> Ints(const Napi::Value& v);
int64_t Int(const Napi::Value& v);
double Num(const Napi::Value& v);
bool Bool(const Napi::Value& v);
std::string Str(const Napi::Value& v);
Napi::Array IntArray(Napi::Env env, at::IntArrayRef v);

// TF.js NHWC <-> ATen NCHW views (no copy: channels_last strides).
inline at::Tensor NhwcToNchw(const at::Tensor& t) { return t.permute({0, 3, 1, 2}); }
inline at::Tensor NchwToNhwc(const at::Tensor& t) { return t.permute({0, 2, 3, 1}).contiguous(); }
// Same for 5-D (NDHWC).
inline at::Tensor NdhwcToNcdhw(const at::Tensor& t) { return t.permute({0, 4, 1, 2, 3}); }
inline at::Tensor NcdhwToNdhwc(const at::Tensor& t) { return t.permute({0, 2, 3, 4, 1}).contiguous(); }

void Register(Napi::Env env, Napi::Object exports, const char* name, Fn fn);

// Per-family initialisers (one per ops_*.cc).
void InitTensor(Napi::Env env, Napi::Object exports);
void InitElementwise(Napi::Env env, Napi::Object exports);
void InitReduce(Napi::Env env, Napi::Object exports);
void InitConv(Napi::Env env, Napi::Object exports);
void InitPool(Napi::Env env, Napi::Object exports);
void InitMatmul(Napi::Env env, Napi::Object exports);
void InitNorm(Napi::Env env, Napi::Object exports);
void InitLayout(Napi::Env env, Napi::Object exports);
void InitImage(Napi::Env env, Napi::Object exports);
void InitGrad(Napi::Env env, Napi::Object exports);

// Caching allocator (allocator.cc).
void InstallCachingAllocator();
int64_t AllocatorBytesInUse();
int64_t AllocatorBytesCached();
int64_t AllocatorNumAllocations();
void AllocatorEmptyCache();

}  // namespace aten_addon
