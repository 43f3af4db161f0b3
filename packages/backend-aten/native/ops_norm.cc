// FusedBatchNorm and its fused gradient. TF.js cycles each per-channel parameter over the
// flattened x; with x viewed as [rows, L] (L the longest parameter) that is broadcasting a
// parameter of L or 1 elements over the rows, which the TS side checks before calling.
#include "common.h"

namespace aten_addon {
namespace {

bool Given(const Napi::Value& v) { return v.IsExternal(); }

// Per-parameter view: [L] or [1], so it broadcasts over x viewed as [rows, L].
at::Tensor Param(const Napi::Value& v) { return T(v).reshape({-1}); }

int64_t Channels(const Napi::CallbackInfo& info, std::initializer_list<int> args) {
  int64_t l = 1;
  for (int i : args) if (Given(info[i])) l = std::max<int64_t>(l, T(info[i]).numel());
  return l;
}

// A per-channel gradient [L] folded back to the parameter's own shape.
at::Tensor Fit(const at::Tensor& g, const at::Tensor& param) {
  return param.numel() == g.numel() ? g.reshape(param.sizes()) : g.sum().reshape(param.sizes());
}

}  // namespace

void InitNorm(Napi::Env env, Napi::Object exports) {
  // batchNorm(x, mean, variance, offset | null, scale | null, varianceEpsilon)
  Register(env, exports, "batchNorm", [](const Napi::CallbackInfo& info) {
    auto& x = T(info[0]);
    int64_t l = Channels(info, {1, 2, 3, 4});
    auto x2 = x.reshape({-1, l});
    // y = (x - mean) * k + offset with k = scale / sqrt(variance + eps). Centering first (rather
    // than x * k + (offset - mean * k)) keeps precision when the mean is large next to the spread.
    auto k = (Param(info[2]) + Num(info[5])).rsqrt_();
    if (Given(info[4])) k = k * Param(info[4]);
    auto centered = x2 - Param(info[1]);
    auto y = Given(info[3]) ? at::addcmul(Param(info[3]), centered, k) : centered.mul_(k);
    return Wrap(info.Env(), y.reshape(x.sizes()));
  });
  // batchNormGrad(dy, x, mean, variance, scale | null, offset | null, varianceEpsilon)
  //   -> [dx, dmean, dvariance, dscale, doffset]; dscale and doffset are shaped like mean when
  //   the parameter is absent.
  Register(env, exports, "batchNormGrad", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto& dy = T(info[0]);
    auto& x = T(info[1]);
    auto& mean = T(info[2]);
    auto& variance = T(info[3]);
    int64_t l = Channels(info, {2, 3, 4, 5});
    auto dy2 = dy.reshape({-1, l});
    auto inv = (Param(info[3]) + Num(info[6])).rsqrt_();
    auto scale = Given(info[4]) ? Param(info[4]) : at::ones({1}, inv.options());
    auto k = inv * scale;
    auto sumDy = dy2.sum(0);
    auto sumDyXc = (dy2 * (x.reshape({-1, l}) - Param(info[2]))).sum(0);
    auto dx = (dy2 * k).reshape(x.sizes());
    auto dmean = -sumDy * k;
    auto dvariance = sumDyXc * k * inv.square() * -0.5;
    auto dscale = sumDyXc * inv;
    auto env = info.Env();
    auto out = Napi::Array::New(env, 5);
    out.Set(0u, Wrap(env, dx));
    out.Set(1u, Wrap(env, Fit(dmean, mean)));
    out.Set(2u, Wrap(env, Fit(dvariance, variance)));
    out.Set(3u, Wrap(env, Fit(dscale, Given(info[4]) ? T(info[4]) : mean)));
    out.Set(4u, Wrap(env, Fit(sumDy, Given(info[5]) ? T(info[5]) : mean)));
    return out;
  });
}

}  // namespace aten_addon
