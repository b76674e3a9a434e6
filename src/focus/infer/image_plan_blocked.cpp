// Host loops on nChw16c for the compiled cnn_se plan (see image_plan_blocked.hpp).
#include "focus/infer/image_plan_blocked.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace focus {

namespace {

constexpr int64_t kB = 16;  // channels per block
// Below this many values read, a call stays on the calling thread (a parallel region's wake-ups
// cost more than the loop at batch 1).
constexpr int64_t kParallelValues = 65536;

int64_t blocks(int64_t C) { return (C + kB - 1) / kB; }

// o (C) = the mean over the plane of one image's map xn (C / 16, HW, 16).
void mean_one(float* o, const float* xn, int64_t C, int64_t HW) {
  const float inv = 1.f / float(HW);
  for (int64_t b = 0; b < blocks(C); ++b) {
    float acc[kB] = {};
    const float* xb = xn + b * HW * kB;
    for (int64_t p = 0; p < HW; ++p)
#pragma omp simd
      for (int64_t j = 0; j < kB; ++j) acc[j] += xb[p * kB + j];
    for (int64_t j = 0; j < kB && b * kB + j < C; ++j) o[b * kB + j] = acc[j] * inv;
  }
}

// y (O) = w (O, I) x (I) + b.
void affine(float* y, const float* w, const float* x, const float* b, int64_t O, int64_t I) {
  for (int64_t o = 0; o < O; ++o) {
    float s = 0.f;
    const float* wo = w + o * I;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < I; ++i) s += wo[i] * x[i];
    y[o] = s + b[o];
  }
}

}  // namespace

void plane_mean_blocked16(float* o, const float* x, int64_t N, int64_t C, int64_t HW) {
  const int64_t per = blocks(C) * HW * kB;  // values of one image's map
#pragma omp parallel for if (N * per >= kParallelValues)
  for (int64_t n = 0; n < N; ++n) mean_one(o + n * C, x + n * per, C, HW);
}

void se_gates_blocked16(float* g, const float* x, int64_t N, int64_t C, int64_t HW,
                        const float* w1, const float* b1, int64_t Cr, const float* w2, const float* b2) {
  const int64_t per = blocks(C) * HW * kB;
#pragma omp parallel for if (N * per >= kParallelValues)
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> m(static_cast<size_t>(C)), h(static_cast<size_t>(Cr));  // (C) squeezed, (Cr) hidden
    mean_one(m.data(), x + n * per, C, HW);
    affine(h.data(), w1, m.data(), b1, Cr, C);
    for (float& v : h) v = std::max(v, 0.f);
    float* gn = g + n * C;
    affine(gn, w2, h.data(), b2, C, Cr);
    for (int64_t c = 0; c < C; ++c) gn[c] = 1.f / (1.f + std::exp(-gn[c]));
  }
}

void pool_gate_blocked16(float* y, const float* x, const float* g, int64_t N, int64_t C, int64_t H,
                         int64_t W) {
  const int64_t Ho = H / 2, Wo = W / 2, B = blocks(C);
#pragma omp parallel for if (N * B * H * W * kB >= kParallelValues)
  for (int64_t nb = 0; nb < N * B; ++nb) {
    const int64_t n = nb / B, b = nb % B;
    float gb[kB] = {};  // the block's gates (padding channels: 0)
    for (int64_t j = 0; j < kB && b * kB + j < C; ++j) gb[j] = g[n * C + b * kB + j];
    const float* xb = x + nb * H * W * kB;
    float* yb = y + nb * Ho * Wo * kB;
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const float* p = xb + (2 * oh * W + 2 * ow) * kB;  // the window's top-left
        float* q = yb + (oh * Wo + ow) * kB;
#pragma omp simd
        for (int64_t j = 0; j < kB; ++j)
          q[j] = std::max(std::max(p[j], p[kB + j]), std::max(p[W * kB + j], p[(W + 1) * kB + j])) * gb[j];
      }
  }
}

void head_blocked16(float* y, const float* x, int64_t N, int64_t C, int64_t HW, const float* w,
                    const float* b, int64_t K) {
  const int64_t per = blocks(C) * HW * kB;
#pragma omp parallel for if (N * per >= kParallelValues)
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> m(static_cast<size_t>(C));  // (C) features
    mean_one(m.data(), x + n * per, C, HW);
    affine(y + n * K, w, m.data(), b, K, C);
  }
}

}  // namespace focus
