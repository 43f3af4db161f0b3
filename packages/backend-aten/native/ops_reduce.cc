// Reductions, arg-reductions, softmax and cumulative sums/products. TF.js dtypes: sums and
// products of int32 or bool are int32, means are float32, max/min keep the input's dtype.
#include "common.h"

namespace aten_addon {
namespace {

// ATen's single-dimension reductions applied over several axes, highest first so that the
// remaining axis numbers stay valid when dimensions are dropped.
template <typename F>
at::Tensor OverAxes(at::Tensor x, std::vector<int64_t> axes, bool keepDims, F f) {
  std::sort(axes.rbegin(), axes.rend());
  for (auto a : axes) x = f(x, a, keepDims);
  return x;
}

at::Tensor Reduce(const std::string& op, const at::Tensor& x, const std::vector<int64_t>& axes, bool keepDims) {
  bool integral = x.scalar_type() != at::kFloat;
  // ATen reads an empty dim list as "every dimension"; TF.js as "none".
  if (axes.empty()) {
    if (op == "mean") return x.to(at::kFloat).clone();
    if ((op == "sum" || op == "prod") && integral) return x.to(at::kInt).clone();
    return x.clone();
  }
  if (op == "sum") return integral ? x.sum(axes, keepDims, at::kInt) : x.sum(axes, keepDims);
  if (op == "mean") return x.to(at::kFloat).mean(axes, keepDims);
  if (op == "max") return x.amax(axes, keepDims);
  if (op == "min") return x.amin(axes, keepDims);
  if (op == "prod") {
    auto dt = integral ? at::kInt : at::kFloat;
    return OverAxes(x, axes, keepDims, [dt](const at::Tensor& t, int64_t a, bool k) { return t.prod(a, k, dt); });
  }
  if (op == "all") return OverAxes(x, axes, keepDims, [](const at::Tensor& t, int64_t a, bool k) { return t.all(a, k); });
  if (op == "any") return OverAxes(x, axes, keepDims, [](const at::Tensor& t, int64_t a, bool k) { return t.any(a, k); });
  throw std::invalid_argument("unknown reduction " + op);
}

// TF.js returns the first extreme and never picks a NaN unless it comes first (comparisons
// with NaN are false); ATen treats NaN as the extreme, so NaNs are masked out when present.
at::Tensor ArgReduce(const at::Tensor& x, int64_t axis, bool isMax) {
  at::Tensor v = x;
  bool nans = x.is_floating_point() && x.isnan().any().item<bool>();
  if (nans) {
    double fill = isMax ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    v = x.masked_fill(x.isnan(), fill);
  }
  auto idx = isMax ? v.argmax(axis) : v.argmin(axis);
  if (nans) idx = idx.masked_fill(x.select(axis, 0).isnan(), 0);
  return idx.to(at::kInt);
}

// Exclusive scans shift the inclusive scan of all but the last element by one; computing them
// as scan - x (or scan / x) would lose precision or divide by zero.
at::Tensor Cumulative(const std::string& op, const at::Tensor& x, int64_t axis, bool exclusive, bool reverse) {
  auto dt = x.scalar_type() == at::kFloat ? at::kFloat : at::kInt;
  auto scan = [&](const at::Tensor& t) { return op == "cumsum" ? t.cumsum(axis, dt) : t.cumprod(axis, dt); };
  at::Tensor v = reverse ? x.flip(axis) : x;
  at::Tensor out;
  if (exclusive) {
    int64_t n = v.size(axis);
    auto first = op == "cumsum" ? at::zeros_like(v.narrow(axis, 0, 1), dt) : at::ones_like(v.narrow(axis, 0, 1), dt);
    out = at::cat({first, scan(v.narrow(axis, 0, n - 1))}, axis);
  } else {
    out = scan(v);
  }
  return reverse ? out.flip(axis) : out;
}

}  // namespace

void InitReduce(Napi::Env env, Napi::Object exports) {
  // reduce(op, x, axes, keepDims), op one of sum mean max min prod all any
  Register(env, exports, "reduce", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), Reduce(Str(info[0]), T(info[1]), Ints(info[2]), Bool(info[3])));
  });
  // argReduce(x, axis, isMax) -> int32 indices
  Register(env, exports, "argReduce", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), ArgReduce(T(info[0]), Int(info[1]), Bool(info[2])));
  });
  Register(env, exports, "softmax", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), at::softmax(T(info[0]), -1));
  });
  // cumulative(op, x, axis, exclusive, reverse), op cumsum or cumprod
  Register(env, exports, "cumulative", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), Cumulative(Str(info[0]), T(info[1]), Int(info[2]), Bool(info[3]), Bool(info[4])));
  });
}

}  // namespace aten_addon
