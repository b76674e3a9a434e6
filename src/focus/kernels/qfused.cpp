// Fused int8 row pipelines (see qfused.hpp).
#include "focus/kernels/qfused.hpp"

#include <algorithm>
#include <vector>

#include "focus/kernels/parallel.hpp"
#include "focus/kernels/unary.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// Rows per block: a block's F32 rows, their int8 copy, the int32 sums and (MLP) the hidden layer
// stay in L1 / L2 for the vit's widths (K, N <= 256).
constexpr int64_t kRows = 48;

struct Scratch {
  std::vector<float> ys, hid, sx;
  std::vector<int8_t> q;
};

// Per-thread scratch kept between calls (no allocation, no page faults per call).
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

template <class T>
T* grow(std::vector<T>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}

// q (mb, w.K), sx (mb) <- the block's rows of x, through the LayerNorm when there is one.
void quantize_block(Scratch& s, const float* x, int64_t ldx, int64_t mb, const QWeight& w,
                    const RowNorm& norm) {
  if (norm.weight)
    quantize_rows_layer_norm_for(w, grow(s.q, mb * w.K), w.K, grow(s.sx, mb), x, ldx, mb,
                                 norm.weight, norm.bias, norm.eps);
  else
    quantize_rows_for(w, grow(s.q, mb * w.K), w.K, grow(s.sx, mb), x, ldx, mb);
}

// v (n values) <- ep(v).
void activate(float* v, int64_t n, QEpilogue ep) {
  if (ep == QEpilogue::Gelu) {
    unary_forward<float>(UnaryOp::Gelu, v, v, n, 0.0);
  } else if (ep == QEpilogue::Relu) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) v[i] = std::max(v[i], 0.0f);
  }
}

// y (mb, N) row stride ldy += v (mb, N) packed.
void add_rows(float* y, int64_t ldy, const float* v, int64_t mb, int64_t N) {
  for (int64_t m = 0; m < mb; ++m) {
    float* o = y + m * ldy;
    const float* a = v + m * N;
#pragma omp simd
    for (int64_t n = 0; n < N; ++n) o[n] += a[n];
  }
}

}  // namespace

void qlinear_fused(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t M, const QWeight& w,
                   const float* bias, QEpilogue ep, const RowNorm& norm, bool accumulate) {
  if (M <= 0) return;
  const bool parallel = M * w.N * w.K >= (int64_t(1) << 18);
  split_over_threads(M, kRows, parallel, [&](int64_t lo, int64_t hi) {
    Scratch& s = scratch();
    for (int64_t m0 = lo; m0 < hi; m0 += kRows) {
      const int64_t mb = std::min(kRows, hi - m0);
      quantize_block(s, x + m0 * ldx, ldx, mb, w, norm);
      if (!accumulate || ep == QEpilogue::None) {
        float* out = y + m0 * ldy;
        qgemm_dequant(out, ldy, s.q.data(), w.K, mb, w, s.sx.data(), bias, accumulate);
        if (ep != QEpilogue::None)
          for (int64_t m = 0; m < mb; ++m) activate(out + m * ldy, w.N, ep);
      } else {  // y += ep(...): the activation needs the product alone first
        float* v = grow(s.ys, mb * w.N);
        qgemm_dequant(v, w.N, s.q.data(), w.K, mb, w, s.sx.data(), bias, false);
        activate(v, mb * w.N, ep);
        add_rows(y + m0 * ldy, ldy, v, mb, w.N);
      }
    }
  });
}

void qmlp_residual(float* h, int64_t ldh, int64_t M, const RowNorm& norm, const QWeight& w1,
                   const float* b1, const QWeight& w2, const float* b2) {
  FOCUS_CHECK(w1.K == w2.N && w1.N == w2.K, ValueError,
              "qmlp_residual: linear1 ({}, {}) and linear2 ({}, {}) do not chain", w1.N, w1.K,
              w2.N, w2.K);
  if (M <= 0) return;
  const int64_t D = w1.K, F = w1.N;
  const bool parallel = 2 * M * F * D >= (int64_t(1) << 18);
  split_over_threads(M, kRows, parallel, [&](int64_t lo, int64_t hi) {
    Scratch& s = scratch();
    for (int64_t m0 = lo; m0 < hi; m0 += kRows) {
      const int64_t mb = std::min(kRows, hi - m0);
      float* rows = h + m0 * ldh;
      quantize_block(s, rows, ldh, mb, w1, norm);
      float* hid = grow(s.hid, mb * F);  // (mb, F)
      qgemm_dequant(hid, F, s.q.data(), D, mb, w1, s.sx.data(), b1, false);
      activate(hid, mb * F, QEpilogue::Gelu);
      quantize_rows_for(w2, grow(s.q, mb * F), F, s.sx.data(), hid, F, mb);
      qgemm_dequant(rows, ldh, s.q.data(), F, mb, w2, s.sx.data(), b2, true);
    }
  });
}

}  // namespace focus
