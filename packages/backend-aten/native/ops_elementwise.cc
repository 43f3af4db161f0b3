// Element-wise kernels: unary math, binary arithmetic with numpy broadcasting, comparisons,
// activations and their gradients. Inputs arrive with TF.js dtypes already matched.
#include <unordered_map>

#include "common.h"

namespace aten_addon {
namespace {

using Unary = at::Tensor (*)(const at::Tensor&);
using Binary = at::Tensor (*)(const at::Tensor&, const at::Tensor&);

const std::unordered_map<std::string, Unary>& Unaries() {
  static const std::unordered_map<std::string, Unary> m = {
      {"Abs", [](const at::Tensor& x) { return x.abs(); }},
      {"Acos", [](const at::Tensor& x) { return x.acos(); }},
      {"Acosh", [](const at::Tensor& x) { return x.acosh(); }},
      {"Asin", [](const at::Tensor& x) { return x.asin(); }},
      {"Asinh", [](const at::Tensor& x) { return x.asinh(); }},
      {"Atan", [](const at::Tensor& x) { return x.atan(); }},
      {"Atanh", [](const at::Tensor& x) { return x.atanh(); }},
      {"Ceil", [](const at::Tensor& x) { return x.ceil(); }},
      {"Cos", [](const at::Tensor& x) { return x.cos(); }},
      {"Cosh", [](const at::Tensor& x) { return x.cosh(); }},
      {"Elu", [](const at::Tensor& x) { return at::elu(x); }},
      {"Erf", [](const at::Tensor& x) { return x.erf(); }},
      {"Exp", [](const at::Tensor& x) { return x.exp(); }},
      {"Expm1", [](const at::Tensor& x) { return x.expm1(); }},
      {"Floor", [](const at::Tensor& x) { return x.floor(); }},
      {"IsFinite", [](const at::Tensor& x) { return x.isfinite(); }},
      {"IsInf", [](const at::Tensor& x) { return x.isinf(); }},
      {"IsNan", [](const at::Tensor& x) { return x.isnan(); }},
      {"Log", [](const at::Tensor& x) { return x.log(); }},
      {"Log1p", [](const at::Tensor& x) { return x.log1p(); }},
      {"LogicalNot", [](const at::Tensor& x) { return x.logical_not(); }},
      {"Neg", [](const at::Tensor& x) { return x.neg(); }},
      {"Reciprocal", [](const at::Tensor& x) { return x.reciprocal(); }},
      {"Relu", [](const at::Tensor& x) { return x.relu(); }},
      {"Relu6", [](const at::Tensor& x) { return x.clamp(0, 6); }},
      {"Round", [](const at::Tensor& x) { return x.round(); }},
      {"Rsqrt", [](const at::Tensor& x) { return x.rsqrt(); }},
      {"Selu", [](const at::Tensor& x) { return at::selu(x); }},
      {"Sigmoid", [](const at::Tensor& x) { return x.sigmoid(); }},
      {"Sign", [](const at::Tensor& x) { return x.sign(); }},
      {"Sin", [](const at::Tensor& x) { return x.sin(); }},
      {"Sinh", [](const at::Tensor& x) { return x.sinh(); }},
      {"Softplus", [](const at::Tensor& x) { return at::softplus(x); }},
      {"Sqrt", [](const at::Tensor& x) { return x.sqrt(); }},
      {"Square", [](const at::Tensor& x) { return x.square(); }},
      {"Tan", [](const at::Tensor& x) { return x.tan(); }},
      {"Tanh", [](const at::Tensor& x) { return x.tanh(); }},
  };
  return m;
}

const std::unordered_map<std::string, Binary>& Binaries() {
  static const std::unordered_map<std::string, Binary> m = {
      {"Add", [](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }},
      {"Sub", [](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); }},
      {"Multiply", [](const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); }},
      {"RealDiv", [](const at::Tensor& a, const at::Tensor& b) { return at::div(a, b); }},
      // floor(a / b) as TF.js computes it, in double: ATen's "floor" mode follows Python
      // (0.5 // -inf == -1), and a float quotient can round up to the next integer (1.5 / 0.3f).
      {"FloorDiv", [](const at::Tensor& a, const at::Tensor& b) {
         return at::div(a.to(at::kDouble), b.to(at::kDouble)).floor_();
       }},
      {"Maximum", [](const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); }},
      {"Minimum", [](const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); }},
      // C's pow(±1, NaN or ±Inf) is 1; JS's Math.pow, and so TF.js, gives NaN.
      {"Pow", [](const at::Tensor& a, const at::Tensor& b) {
         auto r = at::pow(a, b);
         return at::where(at::logical_and(a.abs().eq(1), b.isfinite().logical_not_()), NAN, r);
       }},
      {"SquaredDifference", [](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b).square_(); }},
      // TF.js's floored modulo, in double as JS does it; at::remainder differs for infinite or
      // huge divisors (0.5 mod -inf is -inf there, NaN in TF.js).
      {"Mod", [](const at::Tensor& a, const at::Tensor& b) {
         auto x = a.to(at::kDouble), y = b.to(at::kDouble);
         auto r = at::fmod(x, y);
         return at::where(x.lt(0).eq(y.lt(0)), r, at::fmod(r + y, y)).to(a.scalar_type());
       }},
      {"Atan2", [](const at::Tensor& a, const at::Tensor& b) { return at::atan2(a, b); }},
      {"Equal", [](const at::Tensor& a, const at::Tensor& b) { return at::eq(a, b); }},
      {"NotEqual", [](const at::Tensor& a, const at::Tensor& b) { return at::ne(a, b); }},
      {"Greater", [](const at::Tensor& a, const at::Tensor& b) { return at::gt(a, b); }},
      {"GreaterEqual", [](const at::Tensor& a, const at::Tensor& b) { return at::ge(a, b); }},
      {"Less", [](const at::Tensor& a, const at::Tensor& b) { return at::lt(a, b); }},
      {"LessEqual", [](const at::Tensor& a, const at::Tensor& b) { return at::le(a, b); }},
      {"LogicalAnd", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_and(a, b); }},
      {"LogicalOr", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_or(a, b); }},
      {"LogicalXor", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_xor(a, b); }},
  };
  return m;
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  Register(env, exports, "unary", [](const Napi::CallbackInfo& info) {
    auto name = Str(info[0]);
    auto it = Unaries().find(name);
    if (it == Unaries().end()) throw std::invalid_argument("unknown unary op " + name);
    return Wrap(info.Env(), it->second(T(info[1])));
  });
  Register(env, exports, "binary", [](const Napi::CallbackInfo& info) {
    auto name = Str(info[0]);
    auto it = Binaries().find(name);
    if (it == Binaries().end()) throw std::invalid_argument("unknown binary op " + name);
    return Wrap(info.Env(), it->second(T(info[1]), T(info[2])));
  });
  // step(x, alpha): 1 where x > 0, alpha elsewhere, NaN stays NaN (TF.js semantics).
  Register(env, exports, "step", [](const Napi::CallbackInfo& info) {
    auto& x = T(info[0]);
    double alpha = Num(info[1]);
    auto out = at::where(x.gt(0), at::ones({}, x.options()), at::full({}, alpha, x.options()));
    return Wrap(info.Env(), at::where(x.isnan(), x, out));
  });
  Register(env, exports, "leakyRelu", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), at::leaky_relu(T(info[0]), S(info[1])));
  });
  Register(env, exports, "prelu", [](const Napi::CallbackInfo& info) {
    auto& x = T(info[0]);
    return Wrap(info.Env(), at::where(x.lt(0), x * T(info[1]), x));
  });
  Register(env, exports, "clip", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), at::clamp(T(info[0]), S(info[1]), S(info[2])));
  });
  Register(env, exports, "select", [](const Napi::CallbackInfo& info) {
    auto cond = T(info[0]);
    auto& a = T(info[1]);
    // TF.js allows a rank-1 condition selecting whole rows of a and b.
    if (cond.dim() == 1 && a.dim() > 1) {
      std::vector<int64_t> s(a.dim(), 1);
      s[0] = cond.size(0);
      cond = cond.reshape(s);
    }
    return Wrap(info.Env(), at::where(cond.to(at::kBool), a, T(info[2])));
  });
  Register(env, exports, "addN", [](const Napi::CallbackInfo& info) {
    auto arr = info[0].As<Napi::Array>();
    at::Tensor acc = T(arr.Get(0u)).clone();
    for (uint32_t i = 1; i < arr.Length(); i++) acc.add_(T(arr.Get(i)));
    return Wrap(info.Env(), acc);
  });
  // eluGrad(dy, y): dy where y >= 0, dy * (y + 1) elsewhere.
  Register(env, exports, "eluGrad", [](const Napi::CallbackInfo& info) {
    auto& dy = T(info[0]);
    auto& y = T(info[1]);
    return Wrap(info.Env(), at::where(y.ge(0), dy, dy * (y + 1)));
  });
  // sigmoidCrossEntropy-style fused helpers could go here; keep the list to what TF.js has.
}

}  // namespace aten_addon
