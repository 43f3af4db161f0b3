// Matrix products: BatchMatMul and _FusedMatMul (bias + activation applied in place).
#include "common.h"

namespace aten_addon {
namespace {

int64_t BatchSize(const at::Tensor& t) {
  int64_t n = 1;
  for (int64_t i = 0; i + 2 < t.dim(); i++) n *= t.size(i);
  return n;
}

// TF.js flattens the batch dimensions and pairs output batch i with batch i % batchA of a and
// i % batchB of b. Splitting the larger batch as [batch / small, small] and letting ATen
// broadcast the smaller operand over the leading part gives exactly that pairing.
at::Tensor BatchMatMul(const at::Tensor& a, const at::Tensor& b, bool ta, bool tb,
                       const std::vector<int64_t>& outShape) {
  int64_t ba = BatchSize(a), bb = BatchSize(b);
  int64_t batch = std::max(ba, bb), small = std::min(ba, bb);
  TORCH_CHECK(small > 0 && batch % small == 0, "batch sizes ", ba, " and ", bb, " are not compatible");
  auto view = [&](const at::Tensor& t, int64_t n, bool transpose) {
    std::vector<int64_t> s;
    if (n != small) s.push_back(n / small);
    if (small != 1) s.push_back(small);
    s.push_back(t.size(-2));
    s.push_back(t.size(-1));
    auto v = t.reshape(s);
    return transpose ? v.transpose(-2, -1) : v;
  };
  auto av = view(a, ba, ta), bv = view(b, bb, tb);
  auto out = (av.dim() == 2 && bv.dim() == 2) ? at::mm(av, bv) : at::matmul(av, bv);
  return out.reshape(outShape);
}

at::Tensor Activate(at::Tensor x, const std::string& act, const Napi::Value& prelu, double alpha) {
  if (act == "linear" || act.empty()) return x;
  if (act == "relu") return x.relu_();
  if (act == "relu6") return x.clamp_(0, 6);
  if (act == "elu") return at::elu_(x);
  if (act == "sigmoid") return x.sigmoid_();
  if (act == "leakyrelu") return at::leaky_relu_(x, alpha);
  if (act == "prelu") return at::where(x.lt(0), x * T(prelu), x);
  throw std::invalid_argument("unknown fused activation " + act);
}

}  // namespace

void InitMatmul(Napi::Env env, Napi::Object exports) {
  // batchMatMul(a, b, transposeA, transposeB, outShape)
  Register(env, exports, "batchMatMul", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), BatchMatMul(T(info[0]), T(info[1]), Bool(info[2]), Bool(info[3]), Ints(info[4])));
  });
  // fusedMatMul(a, b, transposeA, transposeB, outShape, bias | null, activation, preluWeights | null, alpha)
  Register(env, exports, "fusedMatMul", [](const Napi::CallbackInfo& info) {
    auto out = BatchMatMul(T(info[0]), T(info[1]), Bool(info[2]), Bool(info[3]), Ints(info[4]));
    if (info[5].IsExternal()) {
      auto& bias = T(info[5]);
      // In place when the bias does not grow the result (the usual [n] or [m, n] bias).
      if (at::infer_size(out.sizes(), bias.sizes()) == out.sizes().vec()) out.add_(bias);
      else out = out + bias;
    }
    return Wrap(info.Env(), Activate(out, Str(info[6]), info[7], Num(info[8])));
  });
}

}  // namespace aten_addon
