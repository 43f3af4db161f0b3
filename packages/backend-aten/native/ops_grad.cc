// Gradients that tfjs-core builds from several full-size ops, as one pass each (run by the
// overrides in src/gradients.ts), and stride-0 broadcasts for the gradients of reductions.
#include <ATen/Parallel.h>

#include <cmath>

#include "common.h"

namespace aten_addon {
namespace {

// out[i] = f(a[i], b[i]) over two float32 tensors of one shape, in parallel.
template <typename F>
at::Tensor Zip(const at::Tensor& aIn, const at::Tensor& bIn, F f) {
  TORCH_CHECK(aIn.sizes() == bIn.sizes(), "shapes ", aIn.sizes(), " and ", bIn.sizes(), " differ");
  TORCH_CHECK(aIn.scalar_type() == at::kFloat && bIn.scalar_type() == at::kFloat, "float32 expected");
  auto a = aIn.contiguous(), b = bIn.contiguous();
  auto out = at::empty(a.sizes(), a.options());
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* po = out.data_ptr<float>();
  at::parallel_for(0, a.numel(), at::internal::GRAIN_SIZE, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) po[i] = f(pa[i], pb[i]);
  });
  return out;
}

}  // namespace

void InitGrad(Napi::Env env, Napi::Object exports) {
  // reluGrad(dy, x): TF.js's dy * step(x), where step is 1 above 0, 0 at or below and NaN for
  // NaN, so that NaN in x or Infinity in dy come out as they do on the cpu backend.
  Register(env, exports, "reluGrad", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), Zip(T(info[0]), T(info[1]), [](float dy, float x) {
      float step = x > 0 ? 1.0f : 0.0f;
      return dy * (x != x ? x : step);
    }));
  });

  // relu6Grad(dy, x): dy where 0 < x < 6, else 0 (TF's Relu6Grad, and what tfjs-layers' relu6,
  // minimum(6, relu(x)), differentiates to); NaN in x gives NaN, as reluGrad does.
  Register(env, exports, "relu6Grad", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), Zip(T(info[0]), T(info[1]), [](float dy, float x) {
      float inside = x > 0 && x < 6 ? 1.0f : 0.0f;
      return dy * (x != x ? x : inside);
    }));
  });

  // squareGrad(dy, x): dy * 2x in one pass; dy may be a broadcast (the gradient of a mean).
  Register(env, exports, "squareGrad", [](const Napi::CallbackInfo& info) {
    auto& dy = T(info[0]);
    auto& x = T(info[1]);
    if (dy.sizes() == x.sizes() && dy.is_contiguous()) {
      return Wrap(info.Env(), Zip(dy, x, [](float g, float v) { return g * (v * 2); }));
    }
    return Wrap(info.Env(), at::addcmul(at::zeros({}, x.options()), dy, x, 2));
  });

  // broadcastView(x, shape): x expanded to shape without copying (stride 0 along the
  // broadcast dims). x's rank must already match.
  Register(env, exports, "broadcastView", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), T(info[0]).expand(Ints(info[1])));
  });
}

}  // namespace aten_addon
