// Max and average pooling (2-D and 3-D) and their gradients, with TF.js semantics: max pooling
// ignores NaN, average pooling divides by the number of real (non-padding) elements, and the
// average-pool gradient divides by the full window size (as tfjs-backend-cpu does).
#include <cmath>

#include "common.h"
#include "padding.h"

namespace aten_addon {
namespace {

// How to express TF.js's windows with ATen's pooling arguments. args: kernel, strides, pads
// ((before, after) per spatial dim, `after` chosen by the caller so that the windows give TF.js's
// output size). ATen pads symmetrically by at most half a window and rounds the output size down
// or up (ceil_mode, one flag for all dims). 'same' with stride 2 usually fits ceil_mode; anything
// else is padded explicitly (padding.h) and pooled without ATen padding.
struct Plan {
  std::vector<int64_t> kernel, strides, sym;
  ExplicitPads pad;  // empty unless ATen's padding cannot express TF.js's
  bool ceil = false;

  Plan(const Napi::CallbackInfo& info, int first) : kernel(Ints(info[first])), strides(Ints(info[first + 1])) {
    auto pads = Ints(info[first + 2]);
    size_t n = kernel.size();
    if (strides.size() != n || pads.size() != 2 * n) throw std::invalid_argument("bad pooling geometry");
    bool floorOk = true, ceilOk = true;
    std::vector<int64_t> before;
    for (size_t i = 0; i < n; i++) {
      int64_t b = pads[2 * i], a = pads[2 * i + 1], k = kernel[i], s = strides[i];
      before.push_back(b);
      bool fits = b >= 0 && b <= k / 2;
      floorOk &= fits && b - a >= 0 && b - a < s;
      ceilOk &= fits && a - b >= 0 && a - b < s && a < k;
    }
    if (floorOk || ceilOk) {
      ceil = !floorOk;
      sym = before;
      return;
    }
    // Some dim fits neither, so it has a non-zero pad and `pad` is active.
    sym.assign(n, 0);
    for (size_t i = 0; i < n; i++) pad.Add(pads[2 * i], pads[2 * i + 1], strides[i]);
  }

  std::vector<int64_t> Ones() const { return std::vector<int64_t>(kernel.size(), 1); }

  std::tuple<at::Tensor, at::Tensor> MaxWithIndices(const at::Tensor& x) const {
    if (x.dim() == 5) return at::max_pool3d_with_indices(x, kernel, strides, sym, Ones(), ceil);
    return at::max_pool2d_with_indices(x, kernel, strides, sym, Ones(), ceil);
  }
  at::Tensor Avg(const at::Tensor& x, bool countPad, c10::optional<int64_t> divisor) const {
    if (x.dim() == 5) return at::avg_pool3d(x, kernel, strides, sym, ceil, countPad, divisor);
    return at::avg_pool2d(x, kernel, strides, sym, ceil, countPad, divisor);
  }
  int64_t WindowSize() const {
    int64_t r = 1;
    for (auto k : kernel) r *= k;
    return r;
  }
};

at::Tensor WithoutNaN(const at::Tensor& x) { return x.masked_fill(x.isnan(), -INFINITY); }

// Max pooling over the (padded) input with indices. A NaN never wins in TF.js (it never compares
// greater), while ATen propagates it; NaN in the output is rare, so only then pool again.
// `finite` tells whether every output is finite: then no window was all NaN or -Infinity, and
// the indices are exactly TF.js's maximum positions. One sum finds out without a mask.
struct MaxResult {
  at::Tensor xp, y, indices;
  bool finite;
};
MaxResult MaxPool(const Plan& p, const at::Tensor& x) {
  auto xp = p.pad.Apply(x, -INFINITY);
  auto [y, indices] = p.MaxWithIndices(xp);
  bool finite = std::isfinite(y.sum().item<double>());
  if (!finite && y.isnan().any().item<bool>()) {
    xp = WithoutNaN(xp);
    std::tie(y, indices) = p.MaxWithIndices(xp);
  }
  return {xp, y, indices, finite};
}

at::Tensor MaxBackward(const Plan& p, const at::Tensor& dy, const at::Tensor& xp, const at::Tensor& indices) {
  auto dx = dy.dim() == 5
      ? at::max_pool3d_with_indices_backward(dy, xp, p.kernel, p.strides, p.sym, p.Ones(), p.ceil, indices)
      : at::max_pool2d_with_indices_backward(dy, xp, p.kernel, p.strides, p.sym, p.Ones(), p.ceil, indices);
  return ChannelsLastResult(p.pad.Undo(dx));
}

// Number of real input elements in each window along spatial dim i (at least minCount), shaped
// to broadcast.
at::Tensor RealCounts(const Plan& p, int64_t i, int64_t in, int64_t out, int64_t rank, int64_t minCount) {
  std::vector<float> c(out);
  for (int64_t o = 0; o < out; o++) {
    int64_t start = o * p.strides[i] - p.pad.before[i];
    c[o] = float(std::max(minCount, std::min(start + p.kernel[i], in) - std::max<int64_t>(start, 0)));
  }
  std::vector<int64_t> shape(rank, 1);
  shape[2 + i] = out;
  return at::tensor(c).reshape(shape);
}

}  // namespace

void InitPool(Napi::Env env, Napi::Object exports) {
  // maxPool(x, kernel, strides, pads, withIndices) -> y, or [y, indices | undefined] with
  // withIndices: the indices for maxPoolGrad, when they are TF.js's maximum positions.
  Register(env, exports, "maxPool", [](const Napi::CallbackInfo& info) -> Napi::Value {
    Plan p(info, 1);
    auto r = MaxPool(p, ChannelsFirst(T(info[0])));
    auto env = info.Env();
    auto y = Wrap(env, ChannelsLastResult(r.y));
    if (!Bool(info[4])) return y;
    auto out = Napi::Array::New(env, 2);
    out.Set(0u, y);
    out.Set(1u, r.finite ? Wrap(env, r.indices) : env.Undefined());
    return out;
  });

  // maxPoolGrad(dy, x, kernel, strides, pads, indices | null) -> dx: dy goes to the first maximum
  // of each window. Without the forward's indices, pools x again to find them.
  Register(env, exports, "maxPoolGrad", [](const Napi::CallbackInfo& info) {
    Plan p(info, 2);
    auto dy = ChannelsFirst(T(info[0]));
    auto x = ChannelsFirst(T(info[1]));
    if (info[5].IsExternal()) return Wrap(info.Env(), MaxBackward(p, dy, p.pad.Apply(x, -INFINITY), T(info[5])));
    auto r = MaxPool(p, x);
    // A window whose maximum is -Infinity (all -Infinity or NaN) has no maximum position in TF.js
    // and passes no gradient; ATen would give it to the window's first element.
    if (!r.finite) {
      auto empty = r.y.eq(-INFINITY);
      if (empty.any().item<bool>()) dy = dy.masked_fill(empty, 0);
    }
    return Wrap(info.Env(), MaxBackward(p, dy, r.xp, r.indices));
  });

  // avgPool(x, kernel, strides, pads, emptyWindowIsZero) -> y. A window entirely in the padding
  // gives 0/0 = NaN, or 0 with emptyWindowIsZero (tfjs-backend-cpu's AvgPool3D divides by
  // max(count, 1)).
  Register(env, exports, "avgPool", [](const Napi::CallbackInfo& info) {
    Plan p(info, 1);
    auto x = ChannelsFirst(T(info[0]));
    if (!p.pad.active) return Wrap(info.Env(), ChannelsLastResult(p.Avg(x, false, c10::nullopt)));
    // Sum over the zero-padded input, then divide by the real elements per window.
    auto y = p.Avg(p.pad.Apply(x, 0), true, 1);
    int64_t minCount = Bool(info[4]) ? 1 : 0;
    for (int64_t i = 0; i + 2 < x.dim(); i++) {
      y.div_(RealCounts(p, i, x.size(i + 2), y.size(i + 2), x.dim(), minCount));
    }
    return Wrap(info.Env(), ChannelsLastResult(y));
  });

  // avgPoolGrad(dy, inputShape, kernel, strides, pads) -> dx. tfjs-backend-cpu spreads dy over each
  // window's real elements divided by the full window size, even where the window overlaps padding.
  Register(env, exports, "avgPoolGrad", [](const Napi::CallbackInfo& info) {
    Plan p(info, 2);
    auto dy = ChannelsFirst(T(info[0]));
    auto input = p.pad.PaddedInputLike(Ints(info[1]), dy);
    auto dx = dy.dim() == 5
        ? at::avg_pool3d_backward(dy, input, p.kernel, p.strides, p.sym, p.ceil, true, p.WindowSize())
        : at::avg_pool2d_backward(dy, input, p.kernel, p.strides, p.sym, p.ceil, true, p.WindowSize());
    return Wrap(info.Env(), ChannelsLastResult(p.pad.Undo(dx)));
  });
}

}  // namespace aten_addon
