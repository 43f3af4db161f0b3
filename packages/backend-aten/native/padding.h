// Spatial padding shared by the convolutions (ops_conv.cc) and pooling (ops_pool.cc).
// TF.js hands both families its pads as (before, after) per spatial dim, whatever the padding
// mode ('same', 'valid' or explicit numbers): they can be asymmetric ('same' with an even window
// or stride 2), negative (3-D 'same' with stride > window) or leave trailing rows unused. ATen's
// conv and pool ops take one symmetric pad per dim and floor (or, for pooling, ceil) the output
// size. Each family decides how much ATen's own padding covers; the rest is applied here to the
// channels-first input with constant_pad_nd (a copy, so only when needed) and cut off the gradient.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "common.h"

namespace aten_addon {

// Rank-generic TF.js channels-last <-> ATen channels-first views (4-D images, 5-D volumes).
inline at::Tensor ChannelsFirst(const at::Tensor& t) { return t.dim() == 5 ? NdhwcToNcdhw(t) : NhwcToNchw(t); }
inline at::Tensor ChannelsLastResult(const at::Tensor& t) {
  return t.dim() == 5 ? NcdhwToNdhwc(t) : NchwToNhwc(t);
}
inline at::MemoryFormat ChannelsLastFormat(int64_t rank) {
  return rank == 5 ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::ChannelsLast;
}

// The padding ATen's op cannot express, applied to the input before the op.
struct ExplicitPads {
  std::vector<int64_t> before, after;
  bool active = false;  // some dim has a non-zero pad, so Apply and Undo copy

  // Adds the next spatial dim. A negative `after` shorter than the stride only leaves trailing
  // rows unused, which the op's floor drops by itself (no copy needed).
  void Add(int64_t b, int64_t a, int64_t stride) {
    if (a < 0 && a > -stride) a = 0;
    before.push_back(b);
    after.push_back(a);
    active |= b != 0 || a != 0;
  }

  // constant_pad_nd's argument (last dim first); sign -1 undoes the padding on a gradient.
  std::vector<int64_t> NdArg(int64_t sign) const {
    std::vector<int64_t> r;
    for (size_t i = before.size(); i-- > 0;) {
      r.push_back(sign * before[i]);
      r.push_back(sign * after[i]);
    }
    return r;
  }

  at::Tensor Apply(const at::Tensor& x, double value = 0) const {
    return active ? at::constant_pad_nd(x, NdArg(1), value) : x;
  }
  at::Tensor Undo(const at::Tensor& g) const { return active ? at::constant_pad_nd(g, NdArg(-1)) : g; }

  // An uninitialised tensor shaped and laid out like the padded channels-first input whose TF.js
  // shape is inShape [N, spatial..., C]. Backward ops read only its sizes and memory format, so
  // the real input need not be kept (or padded) for the input gradient.
  at::Tensor PaddedInputLike(const std::vector<int64_t>& inShape, const at::Tensor& dy) const {
    if (int64_t(inShape.size()) != dy.dim()) throw std::invalid_argument("inputShape rank does not match dy");
    std::vector<int64_t> shape = {inShape[0], inShape.back()};
    for (size_t i = 0; i + 2 < inShape.size(); i++) {
      shape.push_back(inShape[i + 1] + (active ? before[i] + after[i] : 0));
    }
    return at::empty(shape, dy.options().memory_format(ChannelsLastFormat(dy.dim())));
  }
};

}  // namespace aten_addon
