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

// body(i) for i in [0, n): in an OpenMP loop where `parallel`, else a plain one (a parallel region
// with if(false) still costs libgomp's team set-up, about a microsecond a call).
template <class Body>
void for_each(int64_t n, bool parallel, const Body& body) {
  if (!parallel) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) body(i);
}

// o (C) = the mean over the plane of one image's map xn (C / 16, HW, 16).
void mean_one(float* o, const float* xn, int64_t C, int64_t HW) {
  const float inv = 1.f / float(HW);
  for (int64_t b = 0; b < blocks(C); ++b) {
    // Four positions at a time into four sums: one chain of dependent adds would wait on the
    // adder's latency at every position.
    float acc[4][kB] = {};
    const float* xb = xn + b * HW * kB;
    int64_t p = 0;
    for (; p + 4 <= HW; p += 4)
      for (int64_t u = 0; u < 4; ++u)
#pragma omp simd
        for (int64_t j = 0; j < kB; ++j) acc[u][j] += xb[(p + u) * kB + j];
    for (; p < HW; ++p)
#pragma omp simd
      for (int64_t j = 0; j < kB; ++j) acc[0][j] += xb[p * kB + j];
    for (int64_t j = 0; j < kB && b * kB + j < C; ++j)
      o[b * kB + j] = ((acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j])) * inv;
  }
}

// y (O) = wt (I, O)^T x (I) + b: rows of the transposed weight added in, vectors along the
// outputs (no horizontal sums).
void affine(float* y, const float* wt, const float* x, const float* b, int64_t O, int64_t I) {
  for (int64_t o = 0; o < O; ++o) y[o] = b[o];
  for (int64_t i = 0; i < I; ++i) {
    const float xi = x[i];
    const float* wi = wt + i * O;
#pragma omp simd
    for (int64_t o = 0; o < O; ++o) y[o] += xi * wi[o];
  }
}

}  // namespace

void plane_mean_blocked16(float* o, const float* x, int64_t N, int64_t C, int64_t HW) {
  const int64_t per = blocks(C) * HW * kB;  // values of one image's map
  for_each(N, N * per >= kParallelValues, [&](int64_t n) { mean_one(o + n * C, x + n * per, C, HW); });
}

void se_gates_blocked16(float* g, const float* x, int64_t N, int64_t C, int64_t HW,
                        const float* w1t, const float* b1, int64_t Cr, const float* w2t, const float* b2) {
  const int64_t per = blocks(C) * HW * kB;
  for_each(N, N * per >= kParallelValues, [&](int64_t n) {
    std::vector<float> m(static_cast<size_t>(C)), h(static_cast<size_t>(Cr));  // (C) squeezed, (Cr) hidden
    mean_one(m.data(), x + n * per, C, HW);
    affine(h.data(), w1t, m.data(), b1, Cr, C);
    for (float& v : h) v = std::max(v, 0.f);
    float* gn = g + n * C;
    affine(gn, w2t, h.data(), b2, C, Cr);
    for (int64_t c = 0; c < C; ++c) gn[c] = 1.f / (1.f + std::exp(-gn[c]));
  });
}

void pool_gate_blocked16(float* y, const float* x, const float* g, int64_t N, int64_t C, int64_t H,
                         int64_t W) {
  const int64_t Ho = H / 2, Wo = W / 2, B = blocks(C);
  for_each(N * B, N * B * H * W * kB >= kParallelValues, [&](int64_t nb) {
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
  });
}

void head_blocked16(float* y, const float* x, int64_t N, int64_t C, int64_t HW, const float* wt,
                    const float* b, int64_t K) {
  const int64_t per = blocks(C) * HW * kB;
  for_each(N, N * per >= kParallelValues, [&](int64_t n) {
    std::vector<float> m(static_cast<size_t>(C));  // (C) features
    mean_one(m.data(), x + n * per, C, HW);
    affine(y + n * K, wt, m.data(), b, K, C);
  });
}

std::vector<float> transposed(const std::vector<float>& w, int64_t R, int64_t C) {
  std::vector<float> t(w.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) t[size_t(c * R + r)] = w[size_t(r * C + c)];
  return t;
}

}  // namespace focus
