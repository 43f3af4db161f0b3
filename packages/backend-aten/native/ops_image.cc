// Image kernels on NHWC float data. ATen's upsample/grid_sample use PyTorch's coordinate
// conventions and rounding, so the kernels that must match TF.js pixel for pixel are explicit
// loops over output rows (at::parallel_for) doing the arithmetic in double exactly as the
// TF.js cpu kernels do, then storing float.
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "common.h"

namespace aten_addon {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Rows of `rowSize` elements per parallel chunk: enough work to amortise a thread hand-off.
int64_t Grain(int64_t rowSize) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, rowSize)); }

// JS Math.round: halves round towards +infinity (std::round rounds them away from zero).
double JsRound(double v) {
  double f = std::floor(v);
  return v - f >= 0.5 ? f + 1 : f;
}

// util.clamp(lo, x, hi) = Math.max(lo, Math.min(x, hi)), which keeps NaN.
double JsClamp(double lo, double x, double hi) { return std::isnan(x) ? x : std::max(lo, std::min(x, hi)); }

double ResizeScale(int64_t in, int64_t out, bool alignCorners) {
  return alignCorners && out > 1 ? double(in - 1) / double(out - 1) : double(in) / double(out);
}

// Source pixels and weight for each output index of a bilinear resize along one axis.
struct Lerp {
  std::vector<int64_t> lo, hi;
  std::vector<double> frac;
};

Lerp BilinearAxis(int64_t in, int64_t out, bool alignCorners, bool halfPixel) {
  TORCH_CHECK(in > 0 || out == 0, "cannot resize an image with no rows or columns");
  double scale = ResizeScale(in, out, alignCorners);
  Lerp l{std::vector<int64_t>(out), std::vector<int64_t>(out), std::vector<double>(out)};
  for (int64_t i = 0; i < out; i++) {
    double src = halfPixel ? scale * (i + 0.5) - 0.5 : scale * i;
    l.lo[i] = std::max<int64_t>(0, int64_t(std::floor(src)));
    l.hi[i] = std::min<int64_t>(in - 1, int64_t(std::ceil(src)));
    l.frac[i] = src - double(l.lo[i]);
  }
  return l;
}

at::Tensor NearestAxis(int64_t in, int64_t out, bool alignCorners, bool halfPixel) {
  TORCH_CHECK(in > 0 || out == 0, "cannot resize an image with no rows or columns");
  double scale = ResizeScale(in, out, alignCorners);
  auto idx = at::empty({out}, at::kLong);
  auto* p = idx.data_ptr<int64_t>();
  for (int64_t i = 0; i < out; i++) {
    double src = halfPixel ? scale * (i + 0.5) : scale * i;
    int64_t n = std::min<int64_t>(in - 1, int64_t(alignCorners ? JsRound(src) : std::floor(src)));
    p[i] = halfPixel ? std::max<int64_t>(0, n) : n;
  }
  return idx;
}

void CheckImage(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.dim() == 4, what, " must be rank 4 (NHWC), got rank ", t.dim());
  TORCH_CHECK(t.scalar_type() == at::kFloat, what, " must be float32");
}

at::Tensor ResizeBilinear(const at::Tensor& images, int64_t oh, int64_t ow, bool align, bool half) {
  CheckImage(images, "images");
  auto x = images.contiguous();
  int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  auto rows = BilinearAxis(H, oh, align, half), cols = BilinearAxis(W, ow, align, half);
  auto out = at::empty({B, oh, ow, C}, x.options());
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, B * oh, Grain(ow * C), [&](int64_t begin, int64_t end) {
    for (int64_t br = begin; br < end; br++) {
      int64_t b = br / oh, r = br % oh;
      const float* top = in + (b * H + rows.lo[r]) * W * C;
      const float* bot = in + (b * H + rows.hi[r]) * W * C;
      double fr = rows.frac[r];
      float* dst = o + br * ow * C;
      for (int64_t c = 0; c < ow; c++) {
        int64_t l = cols.lo[c] * C, h = cols.hi[c] * C;
        double fc = cols.frac[c];
        for (int64_t d = 0; d < C; d++) {
          double tl = top[l + d], tr = top[h + d], bl = bot[l + d], brr = bot[h + d];
          double t = tl + (tr - tl) * fc, bt = bl + (brr - bl) * fc;
          dst[c * C + d] = float(t + (bt - t) * fr);
        }
      }
    }
  });
  return out;
}

// The adjoint of ResizeBilinear: each dy value is spread over its four source pixels, in the
// cpu kernel's order and with its float32 accumulation, so halfPixelCenters=false is
// bit-identical. (The cpu kernel ignores halfPixelCenters; this uses the forward's
// coordinates for it, which is the true gradient, as TensorFlow computes it.)
at::Tensor ResizeBilinearGrad(const at::Tensor& dyIn, int64_t H, int64_t W, bool align, bool half) {
  CheckImage(dyIn, "dy");
  auto dy = dyIn.contiguous();
  int64_t B = dy.size(0), oh = dy.size(1), ow = dy.size(2), C = dy.size(3);
  auto rows = BilinearAxis(H, oh, align, half), cols = BilinearAxis(W, ow, align, half);
  auto out = at::zeros({B, H, W, C}, dy.options());
  const float* g = dy.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b++) {
      const float* src = g + b * oh * ow * C;
      for (int64_t r = 0; r < oh; r++) {
        float* top = o + (b * H + rows.lo[r]) * W * C;
        float* bot = o + (b * H + rows.hi[r]) * W * C;
        double fr = rows.frac[r], ir = 1.0 - fr;
        for (int64_t c = 0; c < ow; c++) {
          int64_t l = cols.lo[c] * C, h = cols.hi[c] * C;
          double fc = cols.frac[c], ic = 1.0 - fc;
          double wtl = ir * ic, wtr = ir * fc, wbl = fr * ic, wbr = fr * fc;
          for (int64_t d = 0; d < C; d++, src++) {
            double v = *src;
            top[l + d] = float(top[l + d] + v * wtl);
            top[h + d] = float(top[h + d] + v * wtr);
            bot[l + d] = float(bot[l + d] + v * wbl);
            bot[h + d] = float(bot[h + d] + v * wbr);
          }
        }
      }
    }
  });
  return out;
}

// tf.image.transform's fill modes (TF.js cpu kernel's mapCoord), on one axis of length len.
double MapCoord(double v, int64_t len, int mode) {
  enum { kConstant, kReflect, kWrap, kNearest };
  double n = double(len);
  if (mode == kConstant) return v;
  if (mode == kNearest) return JsClamp(0, v, n - 1);
  if (v < 0) {
    if (len <= 1) {
      v = 0;
    } else if (mode == kReflect) {
      double sz2 = 2 * n;
      if (v < sz2) v = sz2 * std::trunc(-v / sz2) + v;
      v = v < -n ? v + sz2 : -v - 1;
    } else {
      v += n * (std::trunc(-v / (n - 1)) + 1);
    }
  } else if (v > n - 1) {
    if (len <= 1) {
      v = 0;
    } else if (mode == kReflect) {
      double sz2 = 2 * n;
      v -= sz2 * std::trunc(v / sz2);
      if (v >= n) v = sz2 - v - 1;
    } else {
      v -= n * std::trunc(v / (n - 1));
    }
  }
  return JsClamp(0, v, n - 1);
}

int FillMode(const std::string& s) {
  if (s == "constant") return 0;
  if (s == "reflect") return 1;
  if (s == "wrap") return 2;
  if (s == "nearest") return 3;
  throw std::invalid_argument("unknown fillMode " + s);
}

// One image plane [H, W, C] read at integral (y, x), fill outside; the bounds test is done in
// double so that NaN or huge coordinates never become out-of-range integer indices.
struct Plane {
  const float* p;
  int64_t H, W, C;
  double fill;
  double at(double y, double x, int64_t d) const {
    if (0 <= y && y < H && 0 <= x && x < W) return p[(int64_t(y) * W + int64_t(x)) * C + d];
    return fill;
  }
};

}  // namespace

void InitImage(Napi::Env env, Napi::Object exports) {
  // resizeBilinear(images, newHeight, newWidth, alignCorners, halfPixelCenters)
  Register(env, exports, "resizeBilinear", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), ResizeBilinear(T(info[0]), Int(info[1]), Int(info[2]), Bool(info[3]), Bool(info[4])));
  });
  // resizeBilinearGrad(dy, imageHeight, imageWidth, alignCorners, halfPixelCenters)
  Register(env, exports, "resizeBilinearGrad", [](const Napi::CallbackInfo& info) {
    return Wrap(info.Env(), ResizeBilinearGrad(T(info[0]), Int(info[1]), Int(info[2]), Bool(info[3]), Bool(info[4])));
  });
  // resizeNearest(images, newHeight, newWidth, alignCorners, halfPixelCenters): any dtype.
  Register(env, exports, "resizeNearest", [](const Napi::CallbackInfo& info) {
    auto& x = T(info[0]);
    TORCH_CHECK(x.dim() == 4, "images must be rank 4 (NHWC), got rank ", x.dim());
    bool align = Bool(info[3]), half = Bool(info[4]);
    auto rows = NearestAxis(x.size(1), Int(info[1]), align, half);
    auto cols = NearestAxis(x.size(2), Int(info[2]), align, half);
    return Wrap(info.Env(), x.index_select(1, rows).index_select(2, cols));
  });
  // resizeNearestGrad(dy, imageHeight, imageWidth, alignCorners, halfPixelCenters): each dy
  // value goes to the one source pixel the forward read it from.
  Register(env, exports, "resizeNearestGrad", [](const Napi::CallbackInfo& info) {
    auto& dy = T(info[0]);
    CheckImage(dy, "dy");
    int64_t H = Int(info[1]), W = Int(info[2]);
    bool align = Bool(info[3]), half = Bool(info[4]);
    auto rows = NearestAxis(H, dy.size(1), align, half), cols = NearestAxis(W, dy.size(2), align, half);
    auto tmp = at::zeros({dy.size(0), H, dy.size(2), dy.size(3)}, dy.options()).index_add_(1, rows, dy);
    return Wrap(info.Env(), at::zeros({dy.size(0), H, W, dy.size(3)}, dy.options()).index_add_(2, cols, tmp));
  });
  // cropAndResize(image, boxes, boxInd, cropHeight, cropWidth, nearest, extrapolationValue)
  Register(env, exports, "cropAndResize", [](const Napi::CallbackInfo& info) {
    CheckImage(T(info[0]), "image");
    auto x = T(info[0]).contiguous();
    auto boxes = T(info[1]).to(at::kDouble).contiguous();
    auto boxInd = T(info[2]).to(at::kLong).contiguous();
    int64_t ch = Int(info[3]), cw = Int(info[4]);
    bool nearest = Bool(info[5]);
    double extrapolation = Num(info[6]);
    int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3), N = boxes.size(0);
    TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4 && boxInd.numel() == N, "boxes must be [numBoxes, 4]");
    auto out = at::zeros({N, ch, cw, C}, x.options());
    const float* in = x.data_ptr<float>();
    const double* bx = boxes.data_ptr<double>();
    const int64_t* bi = boxInd.data_ptr<int64_t>();
    float* o = out.data_ptr<float>();
    at::parallel_for(0, N * ch, Grain(cw * C), [&](int64_t begin, int64_t end) {
      for (int64_t ny = begin; ny < end; ny++) {
        int64_t n = ny / ch, y = ny % ch, b = bi[n];
        if (b >= B) continue;  // TF.js leaves such boxes zero
        double y1 = bx[n * 4], x1 = bx[n * 4 + 1], y2 = bx[n * 4 + 2], x2 = bx[n * 4 + 3];
        double hs = ch > 1 ? (y2 - y1) * double(H - 1) / double(ch - 1) : 0;
        double ws = cw > 1 ? (x2 - x1) * double(W - 1) / double(cw - 1) : 0;
        double yIn = ch > 1 ? y1 * double(H - 1) + double(y) * hs : 0.5 * (y1 + y2) * double(H - 1);
        float* dst = o + ny * cw * C;
        for (int64_t xo = 0; xo < cw; xo++) {
          double xIn = cw > 1 ? x1 * double(W - 1) + double(xo) * ws : 0.5 * (x1 + x2) * double(W - 1);
          float* px = dst + xo * C;
          if (yIn < 0 || yIn > H - 1 || xIn < 0 || xIn > W - 1) {
            std::fill(px, px + C, float(extrapolation));
            continue;
          }
          // A negative box index or NaN coordinate reads undefined in the cpu kernel: NaN.
          if (b < 0 || std::isnan(yIn) || std::isnan(xIn)) {
            std::fill(px, px + C, float(kNaN));
            continue;
          }
          const float* img = in + b * H * W * C;
          if (nearest) {
            const float* s = img + (int64_t(JsRound(yIn)) * W + int64_t(JsRound(xIn))) * C;
            std::copy(s, s + C, px);
            continue;
          }
          int64_t t = int64_t(std::floor(yIn)), bo = int64_t(std::ceil(yIn));
          int64_t l = int64_t(std::floor(xIn)), r = int64_t(std::ceil(xIn));
          double yl = yIn - double(t), xl = xIn - double(l);
          for (int64_t d = 0; d < C; d++) {
            double tl = img[(t * W + l) * C + d], tr = img[(t * W + r) * C + d];
            double bl = img[(bo * W + l) * C + d], br = img[(bo * W + r) * C + d];
            double top = tl + (tr - tl) * xl, bottom = bl + (br - bl) * xl;
            px[d] = float(top + (bottom - top) * yl);
          }
        }
      }
    });
    return Wrap(info.Env(), out);
  });
  // transform(image, transforms [1|B, 8], nearest, fillMode, fillValue, outHeight, outWidth):
  // tf.image.transform (ImageProjectiveTransformV3). Output (x, y) samples the input at
  // ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1.
  Register(env, exports, "transform", [](const Napi::CallbackInfo& info) {
    CheckImage(T(info[0]), "image");
    auto x = T(info[0]).contiguous();
    auto tr = T(info[1]).to(at::kDouble).contiguous();
    bool nearest = Bool(info[2]);
    int mode = FillMode(Str(info[3]));
    double fill = Num(info[4]);
    int64_t oh = Int(info[5]), ow = Int(info[6]);
    int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
    TORCH_CHECK(tr.dim() == 2 && tr.size(1) == 8 && (tr.size(0) == 1 || tr.size(0) == B),
                "transforms must be [1, 8] or [batch, 8]");
    auto out = at::empty({B, oh, ow, C}, x.options());
    const float* in = x.data_ptr<float>();
    const double* tv = tr.data_ptr<double>();
    float* o = out.data_ptr<float>();
    bool perImage = tr.size(0) > 1;
    at::parallel_for(0, B * oh, Grain(ow * C), [&](int64_t begin, int64_t end) {
      for (int64_t by = begin; by < end; by++) {
        int64_t b = by / oh;
        double y = double(by % oh);
        const double* t = tv + (perImage ? b * 8 : 0);
        Plane img{in + b * H * W * C, H, W, C, fill};
        float* dst = o + by * ow * C;
        for (int64_t xo = 0; xo < ow; xo++) {
          double xd = double(xo);
          float* px = dst + xo * C;
          double k = t[6] * xd + t[7] * y + 1;
          if (k == 0) {  // the point is at infinity
            std::fill(px, px + C, float(fill));
            continue;
          }
          double sx = MapCoord((t[0] * xd + t[1] * y + t[2]) / k, W, mode);
          double sy = MapCoord((t[3] * xd + t[4] * y + t[5]) / k, H, mode);
          if (nearest) {
            double ry = JsRound(sy), rx = JsRound(sx);
            for (int64_t d = 0; d < C; d++) px[d] = float(img.at(ry, rx, d));
            continue;
          }
          double y0 = std::floor(sy), x0 = std::floor(sx), y1 = y0 + 1, x1 = x0 + 1;
          for (int64_t d = 0; d < C; d++) {
            double top = (x1 - sx) * img.at(y0, x0, d) + (sx - x0) * img.at(y0, x1, d);
            double bottom = (x1 - sx) * img.at(y1, x0, d) + (sx - x0) * img.at(y1, x1, d);
            px[d] = float((y1 - sy) * top + (sy - y0) * bottom);
          }
        }
      }
    });
    return Wrap(info.Env(), out);
  });
  // rotate(image, sin, cos, centerX, centerY, fill[C]): tf.image.rotateWithOffset, nearest
  // neighbour. sin/cos come from JS so they are bit-identical to the cpu kernel's.
  Register(env, exports, "rotate", [](const Napi::CallbackInfo& info) {
    CheckImage(T(info[0]), "image");
    auto x = T(info[0]).contiguous();
    double sn = Num(info[1]), cs = Num(info[2]), cx = Num(info[3]), cy = Num(info[4]);
    auto fillArr = info[5].As<Napi::Array>();
    int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
    TORCH_CHECK(int64_t(fillArr.Length()) == C, "one fill value per channel expected");
    std::vector<double> fill(C);
    for (int64_t d = 0; d < C; d++) fill[d] = Num(fillArr.Get(uint32_t(d)));
    auto out = at::empty_like(x);
    const float* in = x.data_ptr<float>();
    float* o = out.data_ptr<float>();
    at::parallel_for(0, B * H, Grain(W * C), [&](int64_t begin, int64_t end) {
      for (int64_t by = begin; by < end; by++) {
        double y = double(by % H);
        const float* img = in + (by / H) * H * W * C;
        float* dst = o + by * W * C;
        for (int64_t xo = 0; xo < W; xo++) {
          double xd = double(xo);
          double sx = JsRound((xd - cx) * cs - (y - cy) * sn + cx);
          double sy = JsRound((xd - cx) * sn + (y - cy) * cs + cy);
          bool inside = sx >= 0 && sx < W && sy >= 0 && sy < H;
          const float* s = inside ? img + (int64_t(sy) * W + int64_t(sx)) * C : nullptr;
          for (int64_t d = 0; d < C; d++) dst[xo * C + d] = inside ? s[d] : float(fill[d]);
        }
      }
    });
    return Wrap(info.Env(), out);
  });
}

}  // namespace aten_addon
