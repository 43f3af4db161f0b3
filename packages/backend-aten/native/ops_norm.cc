// FusedBatchNorm and its fused gradient on ATen's inference-mode batch norm. TF.js cycles each
// per-channel parameter over the flattened x; with x viewed as [rows, L] (L the longest
// parameter) that is a parameter of L or 1 elements per row, which the TS side checks first.
#include "common.h"

namespace aten_addon {
namespace {

bool Given(const Napi::Value& v) { return v.IsExternal(); }

// TF.js's parameter view for ATen's batch norm: x as [rows, L] (channels in dimension 1) and
// each parameter as [L], a one-element parameter repeated.
int64_t Channels(const Napi::CallbackInfo& info, std::initializer_list<int> args) {
  int64_t l = 1;
  for (int i : args) if (Given(info[i])) l = std::max<int64_t>(l, T(info[i]).numel());
  return l;
}
c10::optional<at::Tensor> Param(const Napi::Value& v, int64_t l) {
  if (!Given(v)) return c10::nullopt;
  return T(v).reshape({-1}).expand({l}).contiguous();
}

// x as [rows, C] for the training kernels: channels last, parameters of C elements.
at::Tensor Rows(const at::Tensor& x) { return x.reshape({-1, x.size(-1)}); }
c10::optional<at::Tensor> Opt(const Napi::Value& v) { return Given(v) ? c10::optional<at::Tensor>(T(v)) : c10::nullopt; }

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
    auto y = at::batch_norm(x.reshape({-1, l}), Param(info[4], l), Param(info[3], l), Param(info[1], l),
                            Param(info[2], l), /*training=*/false, 0.0, Num(info[5]), /*cudnn_enabled=*/false);
    return Wrap(info.Env(), y.reshape(x.sizes()));
  });
  // batchNormGrad(dy, x, mean, variance, scale | null, offset | null, varianceEpsilon)
  //   -> [dx, dmean, dvariance, dscale, doffset]; dscale and doffset are shaped like mean when
  //   the parameter is absent.
  Register(env, exports, "batchNormGrad", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto& x = T(info[1]);
    auto& mean = T(info[2]);
    auto& variance = T(info[3]);
    int64_t l = Channels(info, {2, 3, 4, 5});
    double eps = Num(info[6]);
    auto scale = Param(info[4], l);
    // In inference mode ATen treats mean and variance as constants: dx = dy * scale * inv,
    // dscale = sum(dy * (x - mean)) * inv, doffset = sum(dy), with inv = 1 / sqrt(variance + eps).
    auto [dx, dscale, doffset] = at::native_batch_norm_backward(
        T(info[0]).reshape({-1, l}), x.reshape({-1, l}), scale, Param(info[2], l), Param(info[3], l),
        c10::nullopt, c10::nullopt, /*train=*/false, eps, {true, true, true});
    auto inv = (*Param(info[3], l) + eps).rsqrt_();
    auto k = scale ? inv * *scale : inv;
    auto dmean = -doffset * k;
    auto dvariance = dscale * k * inv * -0.5;
    auto env = info.Env();
    auto out = Napi::Array::New(env, 5);
    out.Set(0u, Wrap(env, dx.reshape(x.sizes())));
    out.Set(1u, Wrap(env, Fit(dmean, mean)));
    out.Set(2u, Wrap(env, Fit(dvariance, variance)));
    out.Set(3u, Wrap(env, Fit(dscale, Given(info[4]) ? T(info[4]) : mean)));
    out.Set(4u, Wrap(env, Fit(doffset, Given(info[5]) ? T(info[5]) : mean)));
    return out;
  });

  // batchNormTraining(x, scale | null, offset | null, varianceEpsilon) -> [y, mean, variance]:
  // normalisation over every axis but the last with the batch's own moments (the biased
  // variance, as tf.moments gives it). ATen's statistics kernel reads x once.
  Register(env, exports, "batchNormTraining", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto& x = T(info[0]);
    auto rows = Rows(x);
    auto [mean, variance] = at::batch_norm_update_stats(rows, c10::nullopt, c10::nullopt, 0.0);
    auto y = at::batch_norm(rows, Opt(info[1]), Opt(info[2]), mean, variance, /*training=*/false, 0.0, Num(info[3]),
                            /*cudnn_enabled=*/false);
    auto env = info.Env();
    auto out = Napi::Array::New(env, 3);
    out.Set(0u, Wrap(env, y.reshape(x.sizes())));
    out.Set(1u, Wrap(env, mean));
    out.Set(2u, Wrap(env, variance));
    return out;
  });

  // batchNormTrainingGrad(dy, x, mean, variance, scale | null, varianceEpsilon, dmean | null,
  // dvariance | null) -> [dx, dscale, doffset]: the whole backward of batchNormTraining, mean and
  // variance included, plus the gradients that reach x through other uses of mean and variance.
  Register(env, exports, "batchNormTrainingGrad", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto& x = T(info[1]);
    auto& mean = T(info[2]);
    double eps = Num(info[5]);
    auto rows = Rows(x);
    auto invstd = (T(info[3]) + eps).rsqrt_();
    auto [dx, dscale, doffset] = at::native_batch_norm_backward(
        Rows(T(info[0])), rows, Opt(info[4]), c10::nullopt, c10::nullopt, mean, invstd, /*train=*/true, eps,
        {true, true, true});
    double n = double(rows.size(0));
    if (Given(info[6])) dx.add_(T(info[6]).reshape({1, -1}) / n);
    // d variance / dx = 2 (x - mean) / n
    if (Given(info[7])) dx.add_((rows - mean) * (T(info[7]).reshape({1, -1}) * (2 / n)));
    auto env = info.Env();
    auto out = Napi::Array::New(env, 3);
    out.Set(0u, Wrap(env, dx.reshape(x.sizes())));
    out.Set(1u, Wrap(env, dscale));
    out.Set(2u, Wrap(env, doffset));
    return out;
  });
}

}  // namespace aten_addon
