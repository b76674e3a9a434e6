// conv2d lowering choice: per-image im2col + GEMM with images spread over threads (the kernel in
// kernels/conv, each GEMM single-threaded) vs one multi-threaded GEMM over an im2col of the whole
// batch (written here only, for the comparison), F32, at the layer shapes of the Fashion-MNIST
// CNN (batch 128, 3x3, padding 1). Verifies first (per-image against the direct reference on 2
// images, batched against per-image on all 128), then prints the best of 5 runs per layer.
// Run: FOCUS_NUM_THREADS=2 ./build/conv2d_bench
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "focus/kernels/conv.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

// im2col of image n into columns [n*OHW, (n+1)*OHW) of a (CKK, N*OHW) matrix.
static void im2col_ld(float* col, int64_t ld, const float* x, const ConvGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        float* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        const int64_t lo = std::max<int64_t>(0, g.padding - kw),
                      hi = std::min(OW, g.W + g.padding - kw);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh - g.padding + kh;
          float* dst = row + oh * OW;
          if (ih < 0 || ih >= g.H) {
            std::fill(dst, dst + OW, 0.f);
            continue;
          }
          std::fill(dst, dst + lo, 0.f);
          std::memcpy(dst + lo, x + (c * g.H + ih) * g.W - g.padding + kw + lo,
                      (hi - lo) * sizeof(float));
          std::fill(dst + hi, dst + OW, 0.f);
        }
      }
}
static void col2im_ld(float* dx, const float* col, int64_t ld, const ConvGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh - g.padding + kh;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t iw = ow - g.padding + kw;
            if (iw >= 0 && iw < g.W) dx[(c * g.H + ih) * g.W + iw] += row[oh * OW + ow];
          }
        }
      }
}

static void fwd_batched(float* y, const float* x, const float* w, const float* b, const ConvGeom& g,
                        std::vector<float>& col, std::vector<float>& yb) {
  const int64_t OHW = g.OH() * g.OW(), CKK = g.C * g.KH * g.KW, L = g.N * OHW;
#pragma omp parallel for
  for (int64_t n = 0; n < g.N; ++n) im2col_ld(col.data() + n * OHW, L, x + n * g.C * g.H * g.W, g);
  gemm(false, false, g.O, L, CKK, 1.f, w, CKK, col.data(), L, 0.f, yb.data(), L);
#pragma omp parallel for collapse(2)
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t i = 0; i < OHW; ++i) y[(n * g.O + o) * OHW + i] = yb[o * L + n * OHW + i] + b[o];
}

static void bwd_batched(float* dx, float* dw, float* db, const float* dy, const float* x,
                        const float* w, const ConvGeom& g, std::vector<float>& col,
                        std::vector<float>& dyt) {
  const int64_t OHW = g.OH() * g.OW(), CKK = g.C * g.KH * g.KW, L = g.N * OHW;
#pragma omp parallel for collapse(2)
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o)
      std::memcpy(&dyt[o * L + n * OHW], dy + (n * g.O + o) * OHW, OHW * sizeof(float));
  for (int64_t o = 0; o < g.O; ++o) {
    float s = 0;
    for (int64_t i = 0; i < L; ++i) s += dyt[o * L + i];
    db[o] = s;
  }
#pragma omp parallel for
  for (int64_t n = 0; n < g.N; ++n) im2col_ld(col.data() + n * OHW, L, x + n * g.C * g.H * g.W, g);
  gemm(false, true, g.O, CKK, L, 1.f, dyt.data(), L, col.data(), L, 0.f, dw, CKK);
  gemm(true, false, CKK, L, g.O, 1.f, w, CKK, dyt.data(), L, 0.f, col.data(), L);
#pragma omp parallel for
  for (int64_t n = 0; n < g.N; ++n) {
    float* dxn = dx + n * g.C * g.H * g.W;
    std::fill(dxn, dxn + g.C * g.H * g.W, 0.f);
    col2im_ld(dxn, col.data() + n * OHW, L, g);
  }
}

template <class F>
static double best_ms(F&& f, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

static double maxdiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, s = 1;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, (double)std::abs(a[i] - b[i])), s = std::max(s, (double)std::abs(b[i]));
  return m / s;
}

int main() {
  std::printf("%s, %d threads\n", gemm_backend_info().c_str(), num_threads());
  const int64_t layers[][3] = {{1, 32, 28},  {32, 32, 28}, {32, 64, 14},
                               {64, 64, 14}, {64, 128, 7}, {128, 128, 7}};
  double tot[4] = {0, 0, 0, 0};
  for (auto& l : layers) {
    ConvGeom g{128, l[0], l[2], l[2], l[1], 3, 3, 1, 1};
    const int64_t OHW = g.OH() * g.OW(), CKK = g.C * 9;
    Rng rng(1);
    std::vector<float> x(g.N * g.C * g.H * g.W), w(g.O * CKK), b(g.O), dy(g.N * g.O * OHW);
    rng.fill_normal(x.data(), x.size(), 0.f, 1.f);
    rng.fill_normal(w.data(), w.size(), 0.f, 0.1f);
    rng.fill_normal(b.data(), b.size(), 0.f, 0.1f);
    rng.fill_normal(dy.data(), dy.size(), 0.f, 1.f);
    std::vector<float> y1(dy.size()), y2(dy.size()), dx1(x.size()), dx2(x.size()), dw1(w.size()),
        dw2(w.size()), db1(g.O), db2(g.O), col(CKK * g.N * OHW), tmp(g.O * g.N * OHW);
    // Verify first.
    {
      ConvGeom g2 = g;
      g2.N = 2;
      std::vector<float> yr(2 * g.O * OHW), yi(yr.size());
      conv2d_forward_reference(yr.data(), x.data(), w.data(), b.data(), g2);
      conv2d_forward_im2col(yi.data(), x.data(), w.data(), b.data(), g2);
      if (maxdiff(yi, yr) > 1e-4) {
        std::printf("per-image conv differs from the reference: %.2e\n", maxdiff(yi, yr));
        return 1;
      }
    }
    conv2d_forward_im2col(y1.data(), x.data(), w.data(), b.data(), g);
    fwd_batched(y2.data(), x.data(), w.data(), b.data(), g, col, tmp);
    conv2d_backward_im2col(dx1.data(), dw1.data(), db1.data(), dy.data(), x.data(), w.data(), g);
    bwd_batched(dx2.data(), dw2.data(), db2.data(), dy.data(), x.data(), w.data(), g, col, tmp);
    const double err =
        std::max({maxdiff(y1, y2), maxdiff(dx1, dx2), maxdiff(dw1, dw2), maxdiff(db1, db2)});
    if (err > 1e-4) {
      std::printf("batched conv differs from per-image: %.2e\n", err);
      return 1;
    }
    const double t[4] = {
        best_ms([&] { conv2d_forward_im2col(y1.data(), x.data(), w.data(), b.data(), g); }, 5),
        best_ms([&] { fwd_batched(y2.data(), x.data(), w.data(), b.data(), g, col, tmp); }, 5),
        best_ms(
            [&] {
              conv2d_backward_im2col(dx1.data(), dw1.data(), db1.data(), dy.data(), x.data(),
                                     w.data(), g);
            },
            5),
        best_ms(
            [&] {
              bwd_batched(dx2.data(), dw2.data(), db2.data(), dy.data(), x.data(), w.data(), g, col,
                          tmp);
            },
            5)};
    const double gf = 2.0 * g.N * g.O * OHW * CKK * 1e-6;  // forward GFLOP * 1000 (ms -> s)
    std::printf(
        "C=%3ld O=%3ld %2ldx%-2ld  fwd per-image %7.2f ms (%5.1f GF/s)  batched %7.2f ms | "
        "bwd per-image %7.2f ms  batched %7.2f ms  (rel diff %.1e)\n",
        (long)g.C, (long)g.O, (long)g.H, (long)g.W, t[0], gf / t[0], t[1], t[2], t[3], err);
    for (int i = 0; i < 4; ++i) tot[i] += t[i];
  }
  std::printf(
      "total fwd per-image %.1f ms batched %.1f ms | bwd per-image %.1f ms batched %.1f ms\n",
      tot[0], tot[1], tot[2], tot[3]);
}
