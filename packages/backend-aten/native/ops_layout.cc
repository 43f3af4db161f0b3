// Layout kernels: slicing, joining, padding, gathering and constant creation. Shapes and
// attributes arrive already validated and canonicalised by the TS side (tfjs-core's slice_util,
// backend_util), so these functions only translate them into ATen calls. Slices along the
// outermost dimension stay views of their input (they are contiguous already).
#include <cmath>

#include "common.h"

namespace aten_addon {
namespace {

at::ScalarType Dtype(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "int32") return at::kInt;
  if (s == "bool") return at::kBool;
  throw std::invalid_argument("unsupported dtype " + s);
}

std::vector<at::Tensor> Tensors(const Napi::Value& v) {
  auto a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(T(a.Get(i)));
  return out;
}

Napi::Value WrapAll(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto a = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) a.Set(i, Wrap(env, ts[i].contiguous()));
  return a;
}

// TF's mirror padding: 'reflect' (offset 0) excludes the edge, 'symmetric' (offset 1) repeats it.
at::Tensor MirrorIndex(int64_t before, int64_t size, int64_t after, int64_t offset) {
  auto idx = at::empty({before + size + after}, at::kLong);
  auto* p = idx.data_ptr<int64_t>();
  for (int64_t j = 0; j < before + size + after; j++) {
    int64_t c = j - before;
    if (c < 0) c = -c - offset;
    else if (c >= size) c = 2 * (size - 1) - c + offset;
    p[j] = c;
  }
  return idx;
}

// Int32Array stores a double by truncation (ToInt32) and Float32Array by rounding to float.
template <typename Out>
void RangeFill(Out* p, int64_t n, double start, double step) {
  auto store = [](double v) -> Out {
    if constexpr (std::is_same_v<Out, float>) return static_cast<float>(v);
    else return static_cast<int32_t>(static_cast<int64_t>(std::trunc(v)));
  };
  if (n == 0) return;
  p[0] = store(start);
  for (int64_t i = 1; i < n; i++) p[i] = store(static_cast<double>(p[i - 1]) + step);
}

}  // namespace

void InitLayout(Napi::Env env, Napi::Object exports) {
  Register(env, exports, "transpose", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), T(info[0]).permute(Ints(info[1])).contiguous());
  });
  // slice(x, begin, size)
  Register(env, exports, "slice", [](const Napi::CallbackInfo& info) {
    auto out = T(info[0]);
    auto begin = Ints(info[1]), size = Ints(info[2]);
    for (size_t d = 0; d < begin.size(); d++) out = out.narrow(d, begin[d], size[d]);
    return Wrap(info.Env(), out.contiguous());
  });
  // stridedSlice(x, begin, strides, sizes, finalShape): element k of dim d is
  // begin[d] + k * strides[d]; ATen slices only take positive steps, so negative ones slice
  // forwards and flip. finalShape adds the new axes and drops the shrunk ones.
  Register(env, exports, "stridedSlice", [](const Napi::CallbackInfo& info) {
    auto out = T(info[0]);
    auto begin = Ints(info[1]), strides = Ints(info[2]), sizes = Ints(info[3]), finalShape = Ints(info[4]);
    for (auto s : sizes)
      if (s == 0) return Wrap(info.Env(), at::empty(finalShape, out.options()));
    for (size_t d = 0; d < sizes.size(); d++) {
      int64_t b = begin[d], s = strides[d], last = b + (sizes[d] - 1) * s;
      if (s > 0) {
        out = out.slice(d, b, last + 1, s);
      } else {
        out = out.slice(d, last, b + 1, -s).flip(d);
      }
    }
    return Wrap(info.Env(), out.contiguous().view(finalShape));
  });
  Register(env, exports, "concat", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), at::cat(Tensors(info[0]), Int(info[1])));
  });
  Register(env, exports, "stack", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), at::stack(Tensors(info[0]), Int(info[1])));
  });
  Register(env, exports, "unstack", [](const Napi::CallbackInfo& info) {
    return WrapAll(info.Env(), T(info[0]).unbind(Int(info[1])));
  });
  // split(x, sizes, axis)
  Register(env, exports, "split", [](const Napi::CallbackInfo& info) {
    return WrapAll(info.Env(), T(info[0]).split_with_sizes(Ints(info[1]), Int(info[2])));
  });
  Register(env, exports, "tile", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), T(info[0]).repeat(Ints(info[1])));
  });
  // pad(x, [before0, after0, before1, after1, ...], value)
  Register(env, exports, "pad", [](const Napi::CallbackInfo& info) {
    auto p = Ints(info[1]);
    std::vector<int64_t> rev;  // constant_pad_nd lists the last dimension first
    for (size_t i = p.size(); i >= 2; i -= 2) rev.insert(rev.end(), {p[i - 2], p[i - 1]});
    return Wrap(info.Env(), at::constant_pad_nd(T(info[0]), rev, S(info[2])));
  });
  // mirrorPad(x, [before0, after0, ...], offset): 0 = reflect, 1 = symmetric.
  Register(env, exports, "mirrorPad", [](const Napi::CallbackInfo& info) {
    auto out = T(info[0]);
    auto p = Ints(info[1]);
    int64_t offset = Int(info[2]);
    for (int64_t d = 0; d < out.dim(); d++) {
      if (p[2 * d] == 0 && p[2 * d + 1] == 0) continue;
      out = out.index_select(d, MirrorIndex(p[2 * d], out.size(d), p[2 * d + 1], offset));
    }
    return Wrap(info.Env(), out.contiguous());
  });
  // gather(x, indices, axis): index_select rejects out-of-range indices, as TF.js does.
  Register(env, exports, "gather", [](const Napi::CallbackInfo& info) {
    auto& x = T(info[0]);
    auto& indices = T(info[1]);
    int64_t axis = Int(info[2]);
    auto shape = x.sizes().vec();
    shape.erase(shape.begin() + axis);
    shape.insert(shape.begin() + axis, indices.sizes().begin(), indices.sizes().end());
    return Wrap(info.Env(), x.index_select(axis, indices.reshape({-1})).reshape(shape));
  });
  // gatherNd(params, indices, strides, sliceSize, resultShape): TF.js validates only the
  // flattened slice index, so the same is done here (index_select throws when it is out of range).
  Register(env, exports, "gatherNd", [](const Napi::CallbackInfo& info) {
    auto& params = T(info[0]);
    auto& indices = T(info[1]);
    auto strides = at::tensor(Ints(info[2]), at::kLong);
    int64_t sliceSize = Int(info[3]);
    auto flat = (indices.reshape({-1, strides.numel()}).to(at::kLong) * strides).sum(1);
    return Wrap(info.Env(), params.reshape({-1, sliceSize}).index_select(0, flat).reshape(Ints(info[4])));
  });
  Register(env, exports, "reverse", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), T(info[0]).flip(Ints(info[1])));
  });
  // oneHot(indices, depth, on, off, dtype): indices outside [0, depth) give an all-off row.
  Register(env, exports, "oneHot", [](const Napi::CallbackInfo& info) {
    auto& indices = T(info[0]);
    auto dt = Dtype(Str(info[4]));
    auto hot = indices.unsqueeze(-1).eq(at::arange(Int(info[1]), indices.options()));
    auto on = at::scalar_tensor(S(info[2]), dt), off = at::scalar_tensor(S(info[3]), dt);
    return Wrap(info.Env(), at::where(hot, on, off));
  });
  Register(env, exports, "fill", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), at::full(Ints(info[0]), S(info[1]), at::TensorOptions().dtype(Dtype(Str(info[2])))));
  });
  // range(start, step, n, dtype): accumulates like TF.js (each value is the previous stored one
  // plus step) rather than start + i * step, so rounding matches.
  Register(env, exports, "range", [](const Napi::CallbackInfo& info) {
    double start = Num(info[0]), step = Num(info[1]);
    int64_t n = Int(info[2]);
    auto out = at::empty({n}, at::TensorOptions().dtype(Dtype(Str(info[3]))));
    if (out.scalar_type() == at::kFloat) RangeFill(out.data_ptr<float>(), n, start, step);
    else RangeFill(out.data_ptr<int32_t>(), n, start, step);
    return Wrap(info.Env(), out);
  });
  Register(env, exports, "einsum", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), at::einsum(Str(info[0]), Tensors(info[1])).contiguous());
  });
}

}  // namespace aten_addon
