// int8 convolution (see qconv.hpp).
// Per image: x is transposed once to (H, W, C) so that a window row (kw, c) is contiguous; then,
// per block of output positions, the im2row block (F32, rows in the (kh, kw, c) order of the
// packed weight) is quantised per row, multiplied in int32 and dequantised straight into y's
// (O, OH*OW) layout. All scratch is per thread and kept between calls.
#include "focus/kernels/qconv.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

constexpr int64_t kPosBlock = 96;  // output positions per block (the scratch stays in L2)

struct Scratch {
  std::vector<float> hwc, rows, sx;
  std::vector<int8_t> q;
  std::vector<int32_t> acc;
};

template <class T>
void grow(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

// rows (P, KH*KW*C) for output positions [p0, p0 + P) <- hwc (H, W, C); zeros in the padding.
void im2row_hwc(float* rows, const float* hwc, int64_t p0, int64_t P, const ConvGeom& g) {
  const int64_t OW = g.OW(), C = g.C, KK = g.KH * g.KW * C;
  for (int64_t i = 0; i < P; ++i) {
    const int64_t oh = (p0 + i) / OW, ow = (p0 + i) % OW;
    float* r = rows + i * KK;
    const int64_t iw0 = ow * g.stride - g.padding;
    // Columns kw in [lo, hi) fall inside the image.
    const int64_t lo = std::clamp<int64_t>(-iw0, 0, g.KW), hi = std::clamp<int64_t>(g.W - iw0, lo, g.KW);
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.stride - g.padding + kh;
      float* dst = r + kh * g.KW * C;
      if (ih < 0 || ih >= g.H) {
        std::fill(dst, dst + g.KW * C, 0.0f);
        continue;
      }
      std::fill(dst, dst + lo * C, 0.0f);
      std::memcpy(dst + lo * C, hwc + (ih * g.W + iw0 + lo) * C, size_t((hi - lo) * C) * sizeof(float));
      std::fill(dst + hi * C, dst + g.KW * C, 0.0f);
    }
  }
}

// (C, H, W) -> (H, W, C)
void to_hwc(float* hwc, const float* x, const ConvGeom& g) {
  const int64_t HW = g.H * g.W;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t p = 0; p < HW; ++p) hwc[p * g.C + c] = x[c * HW + p];
}

// Output positions [lo, hi) of one image: y (O, OH*OW) <- hwc (H, W, C).
void positions(float* y, const float* hwc, const QWeight& w, const float* bias,
               const float* out_scale, const ConvGeom& g, QEpilogue ep, int64_t lo, int64_t hi,
               Scratch& s) {
  const int64_t OHW = g.OH() * g.OW(), KK = w.K;
  grow(s.rows, kPosBlock * KK);
  grow(s.q, kPosBlock * KK);
  grow(s.sx, kPosBlock);
  grow(s.acc, kPosBlock * g.O);
  const float* sw = w.scale.data();
  for (int64_t p0 = lo; p0 < hi; p0 += kPosBlock) {
    const int64_t P = std::min(kPosBlock, hi - p0);
    im2row_hwc(s.rows.data(), hwc, p0, P, g);
    quantize_rows_for(w, s.q.data(), KK, s.sx.data(), s.rows.data(), KK, P);
    qgemm_s32(s.acc.data(), g.O, s.q.data(), KK, P, w);
    const float* sx = s.sx.data();
    for (int64_t o = 0; o < g.O; ++o) {
      float* out = y + o * OHW + p0;
      const float so = sw[o] * (out_scale ? out_scale[o] : 1.0f), bo = bias ? bias[o] : 0.0f;
      const int32_t* a = s.acc.data() + o;
      if (ep == QEpilogue::Relu) {  // one pass, vectorised (a separate ReLU loop was not)
#pragma omp simd
        for (int64_t i = 0; i < P; ++i) {
          const float v = float(a[i * g.O]) * (sx[i] * so) + bo;
          out[i] = v > 0.0f ? v : 0.0f;
        }
        continue;
      }
#pragma omp simd
      for (int64_t i = 0; i < P; ++i) out[i] = float(a[i * g.O]) * (sx[i] * so) + bo;
      if (ep == QEpilogue::Gelu) {
        for (int64_t i = 0; i < P; ++i)
          out[i] = 0.5f * out[i] * (1.0f + std::erf(out[i] * 0.70710678118654752f));
      }
    }
  }
}

}  // namespace

void conv_weight_hwc(float* out, const float* w, int64_t O, int64_t C, int64_t KH, int64_t KW) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw)
          out[((o * KH + kh) * KW + kw) * C + c] = w[((o * C + c) * KH + kh) * KW + kw];
}

void conv2d_forward_int8(float* y, const float* x, const QWeight& w, const float* bias,
                         const ConvGeom& g, QEpilogue ep, const float* out_scale) {
  const int64_t CKK = g.C * g.KH * g.KW, OHW = g.OH() * g.OW(), CHW = g.C * g.H * g.W;
  FOCUS_CHECK(w.N == g.O && w.K == CKK, ShapeError,
              "conv2d_forward_int8: packed weight ({}, {}) for O {} and C*KH*KW {}", w.N, w.K, g.O,
              CKK);
  const int threads = omp_in_parallel() ? 1 : num_threads();
  if (g.N > 1 || threads == 1 || OHW <= kPosBlock) {  // images over the threads
    const int nt = int(std::min<int64_t>(threads, g.N));
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      thread_local Scratch s;
      grow(s.hwc, CHW);
      to_hwc(s.hwc.data(), x + n * CHW, g);
      positions(y + n * g.O * OHW, s.hwc.data(), w, bias, out_scale, g, ep, 0, OHW, s);
    }
    return;
  }
  // One image, several threads: the image transposed once, whole blocks of positions per thread.
  thread_local std::vector<float> hwc;
  grow(hwc, CHW);
  to_hwc(hwc.data(), x, g);
  const float* shared = hwc.data();
  const int64_t blocks = (OHW + kPosBlock - 1) / kPosBlock;
  const int nt = int(std::min<int64_t>(threads, blocks));
  const int64_t per = (blocks + nt - 1) / nt * kPosBlock;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < nt; ++t) {
    const int64_t lo = std::min(OHW, t * per), hi = std::min(OHW, lo + per);
    thread_local Scratch s;
    if (lo < hi) positions(y, shared, w, bias, out_scale, g, ep, lo, hi, s);
  }
}

}  // namespace focus
