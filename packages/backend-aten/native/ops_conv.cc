// Convolutions (2-D and 3-D, plain and depthwise): forward with fused bias/activation, and both
// gradients through at::convolution_backward. TF.js tensors are channels-last; viewed as NC(D)HW
// they have channels_last strides, which oneDNN reads directly and keeps for its results, so the
// final permute back to channels-last is free.
#include <algorithm>

#include "common.h"
#include "padding.h"

namespace aten_addon {
namespace {

// TF.js filter [spatial..., in, out] -> ATen [out, in, spatial...]. A depthwise filter
// [spatial..., C, M] is the grouped filter [spatial..., 1, C*M] (output channel c*M+m).
at::Tensor FilterToAten(at::Tensor w, bool depthwise) {
  int64_t n = w.dim() - 2;
  if (depthwise) {
    auto s = w.sizes().vec();
    s[n + 1] *= s[n];
    s[n] = 1;
    w = w.reshape(s);
  }
  std::vector<int64_t> perm = {n + 1, n};
  for (int64_t i = 0; i < n; i++) perm.push_back(i);
  return w.permute(perm).contiguous(ChannelsLastFormat(w.dim()));
}

at::Tensor FilterFromAten(const at::Tensor& g, at::IntArrayRef tfShape) {
  int64_t n = g.dim() - 2;
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < n; i++) perm.push_back(i + 2);
  perm.push_back(1);
  perm.push_back(0);
  return g.permute(perm).contiguous().reshape(tfShape);
}

// ATen pads each dim symmetrically by the smaller of TF.js's two pads (never below zero); the
// rest is applied explicitly (padding.h).
struct Pads {
  std::vector<int64_t> sym;
  ExplicitPads extra;

  Pads(const std::vector<int64_t>& pads, const std::vector<int64_t>& strides) {
    size_t n = strides.size();
    if (pads.size() != 2 * n) throw std::invalid_argument("expected two pads per spatial dimension");
    for (size_t i = 0; i < n; i++) {
      int64_t b = pads[2 * i], a = pads[2 * i + 1];
      int64_t s = std::max<int64_t>(0, std::min(b, a));
      sym.push_back(s);
      extra.Add(b - s, a - s, strides[i]);
    }
  }
};

struct Geometry {
  std::vector<int64_t> strides, dilations;
  Pads pads;
  int64_t groups;
  bool depthwise;

  // args: strides, dilations, pads, groups (> 1 only for depthwise convolutions)
  Geometry(const Napi::CallbackInfo& info, int first)
      : strides(Ints(info[first])), dilations(Ints(info[first + 1])), pads(Ints(info[first + 2]), strides),
        groups(Int(info[first + 3])), depthwise(groups > 1) {}

  std::vector<int64_t> NoOutputPadding() const { return std::vector<int64_t>(strides.size(), 0); }
};

void Activate(at::Tensor& y, const std::string& act, const Napi::Value& prelu, double alpha) {
  if (act == "linear") return;
  if (act == "relu") y.relu_();
  else if (act == "relu6") y.clamp_(0, 6);
  else if (act == "elu") at::elu_(y);
  else if (act == "sigmoid") y.sigmoid_();
  else if (act == "leakyrelu") at::leaky_relu_(y, alpha);
  else if (act == "prelu") y = at::where(y.lt(0), y * T(prelu), y);
  else throw std::invalid_argument("unknown activation " + act);
}

}  // namespace

void InitConv(Napi::Env env, Napi::Object exports) {
  // conv(x, filter, strides, dilations, pads, groups[, bias, activation, preluWeights, leakyAlpha])
  // bias may be any tensor broadcastable to the (channels-last) output.
  Register(env, exports, "conv", [](const Napi::CallbackInfo& info) {
    Geometry g(info, 2);
    auto x = g.pads.extra.Apply(ChannelsFirst(T(info[0])));
    // ATen 1.13 sends small single-image inputs (N*C*H*W <= 20480) to its slow convolution,
    // 10-40x slower than oneDNN here; repeating the image past that size and keeping the first
    // result costs far less than the slow path.
    const bool tiny = x.dim() == 4 && x.size(0) == 1 && x.numel() > 0 && x.numel() <= 20480;
    if (tiny) x = x.repeat({20480 / x.numel() + 1, 1, 1, 1}).contiguous(at::MemoryFormat::ChannelsLast);
    auto w = FilterToAten(T(info[1]), g.depthwise);
    c10::optional<at::Tensor> convBias;
    bool hasBias = info.Length() > 6 && info[6].IsExternal();
    // A per-channel bias goes into the convolution itself, which oneDNN fuses.
    if (hasBias && T(info[6]).dim() == 1 && T(info[6]).size(0) == w.size(0)) {
      convBias = T(info[6]);
      hasBias = false;
    }
    auto conv = at::convolution(x, w, convBias, g.strides, g.pads.sym, g.dilations, false, g.NoOutputPadding(), g.groups);
    auto y = ChannelsLastResult(tiny ? conv.narrow(0, 0, 1) : conv);
    if (hasBias) y.add_(T(info[6]));
    if (info.Length() > 7 && info[7].IsString()) {
      Activate(y, Str(info[7]), info[8], info.Length() > 9 && info[9].IsNumber() ? Num(info[9]) : 0.2);
    }
    return Wrap(info.Env(), y);
  });

  // convBackpropInput(dy, filter, inputShape, strides, dilations, pads, groups) -> dx
  Register(env, exports, "convBackpropInput", [](const Napi::CallbackInfo& info) {
    auto dy = ChannelsFirst(T(info[0]));
    auto w = FilterToAten(T(info[1]), Int(info[6]) > 1);
    auto inShape = Ints(info[2]);
    Geometry g(info, 3);
    auto input = g.pads.extra.PaddedInputLike(inShape, dy);
    auto grads = at::convolution_backward(dy, input, w, c10::nullopt, g.strides, g.pads.sym, g.dilations, false,
                                          g.NoOutputPadding(), g.groups, {true, false, false});
    return Wrap(info.Env(), ChannelsLastResult(g.pads.extra.Undo(std::get<0>(grads))));
  });

  // convBackpropFilter(x, dy, filterShape, strides, dilations, pads, groups) -> dfilter (TF.js layout)
  Register(env, exports, "convBackpropFilter", [](const Napi::CallbackInfo& info) {
    Geometry g(info, 3);
    auto x = g.pads.extra.Apply(ChannelsFirst(T(info[0])));
    auto dy = ChannelsFirst(T(info[1]));
    auto tfShape = Ints(info[2]);
    if (int64_t(tfShape.size()) != x.dim()) throw std::invalid_argument("filterShape rank does not match x");
    int64_t n = x.dim() - 2;
    int64_t in = tfShape[n], out = tfShape[n + 1];
    if (g.depthwise) {
      out *= in;
      in = 1;
    }
    std::vector<int64_t> shape = {out, in};
    for (int64_t i = 0; i < n; i++) shape.push_back(tfShape[i]);
    // ATen reads only the sizes and memory format of the weight for dweight.
    auto weight = at::empty(shape, x.options().memory_format(ChannelsLastFormat(x.dim())));
    auto grads = at::convolution_backward(dy, x, weight, c10::nullopt, g.strides, g.pads.sym, g.dilations, false,
                                          g.NoOutputPadding(), g.groups, {false, true, false});
    return Wrap(info.Env(), FilterFromAten(std::get<1>(grads), tfShape));
  });
}

}  // namespace aten_addon
