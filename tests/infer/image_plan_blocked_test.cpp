// The blocked plan's host loops (infer/image_plan_blocked.hpp) against the same maths written
// plainly on NCHW: channel counts on and off the 16-channel block (the last block padded, its
// padding filled with values that must not leak), odd planes (pooling floors), one and several
// images (the parallel branch at the larger sizes).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "focus/infer/image_plan_blocked.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {
namespace {

// x (N, C, H, W) NCHW -> nChw16c, padding channels set to `pad`.
std::vector<float> to_blocked(const std::vector<float>& x, int64_t N, int64_t C, int64_t HW, float pad) {
  const int64_t B = (C + 15) / 16;
  std::vector<float> y(size_t(N * B * HW * 16), pad);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p)
        y[size_t(((n * B + c / 16) * HW + p) * 16 + c % 16)] = x[size_t((n * C + c) * HW + p)];
  return y;
}

std::vector<float> normal(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal());
  return v;
}

// (N, C) means over the plane of NCHW x, in double.
std::vector<double> means(const std::vector<float>& x, int64_t N, int64_t C, int64_t HW) {
  std::vector<double> m(size_t(N * C), 0.0);
  for (int64_t i = 0; i < N * C; ++i) {
    for (int64_t p = 0; p < HW; ++p) m[size_t(i)] += x[size_t(i * HW + p)];
    m[size_t(i)] /= double(HW);
  }
  return m;
}

struct Geometry {
  int64_t N, C, H, W;
};
const Geometry kGeometries[] = {
    {1, 32, 28, 28}, {1, 24, 7, 7}, {3, 8, 15, 15}, {5, 48, 14, 13}, {64, 40, 9, 9}};

TEST(ImagePlanBlocked, MeanAndHeadMatchPlainMaths) {
  for (const Geometry& g : kGeometries) {
    const int64_t HW = g.H * g.W, K = 10;
    const std::vector<float> x = normal(size_t(g.N * g.C * HW), 1), w = normal(size_t(K * g.C), 2),
                             b = normal(size_t(K), 3);
    const std::vector<float> xb = to_blocked(x, g.N, g.C, HW, 1e30f);
    const std::vector<double> m = means(x, g.N, g.C, HW);
    std::vector<float> got(size_t(g.N * g.C)), logits(size_t(g.N * K));
    plane_mean_blocked16(got.data(), xb.data(), g.N, g.C, HW);
    head_blocked16(logits.data(), xb.data(), g.N, g.C, HW, transposed(w, K, g.C).data(), b.data(), K);
    for (int64_t i = 0; i < g.N * g.C; ++i) EXPECT_NEAR(got[size_t(i)], m[size_t(i)], 1e-5) << g.C << " " << i;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        double want = b[size_t(k)];
        for (int64_t c = 0; c < g.C; ++c) want += double(w[size_t(k * g.C + c)]) * m[size_t(n * g.C + c)];
        EXPECT_NEAR(logits[size_t(n * K + k)], want, 1e-4) << g.C << " " << n << " " << k;
      }
  }
}

TEST(ImagePlanBlocked, SeGatesMatchPlainMaths) {
  for (const Geometry& g : kGeometries) {
    const int64_t HW = g.H * g.W, Cr = std::max<int64_t>(1, g.C / 4);
    const std::vector<float> x = normal(size_t(g.N * g.C * HW), 4), w1 = normal(size_t(Cr * g.C), 5),
                             b1 = normal(size_t(Cr), 6), w2 = normal(size_t(g.C * Cr), 7),
                             b2 = normal(size_t(g.C), 8);
    const std::vector<float> xb = to_blocked(x, g.N, g.C, HW, 1e30f);
    const std::vector<double> m = means(x, g.N, g.C, HW);
    std::vector<float> gates(size_t(g.N * g.C));
    se_gates_blocked16(gates.data(), xb.data(), g.N, g.C, HW, transposed(w1, Cr, g.C).data(), b1.data(), Cr,
                       transposed(w2, g.C, Cr).data(), b2.data());
    for (int64_t n = 0; n < g.N; ++n) {
      std::vector<double> h(static_cast<size_t>(Cr));
      for (int64_t r = 0; r < Cr; ++r) {
        double s = b1[size_t(r)];
        for (int64_t c = 0; c < g.C; ++c) s += double(w1[size_t(r * g.C + c)]) * m[size_t(n * g.C + c)];
        h[size_t(r)] = std::max(s, 0.0);
      }
      for (int64_t c = 0; c < g.C; ++c) {
        double s = b2[size_t(c)];
        for (int64_t r = 0; r < Cr; ++r) s += double(w2[size_t(c * Cr + r)]) * h[size_t(r)];
        EXPECT_NEAR(gates[size_t(n * g.C + c)], 1.0 / (1.0 + std::exp(-s)), 1e-5) << g.C << " " << n << " " << c;
      }
    }
  }
}

TEST(ImagePlanBlocked, PoolGateMatchesPlainMaths) {
  for (const Geometry& g : kGeometries) {
    const int64_t HW = g.H * g.W, Ho = g.H / 2, Wo = g.W / 2, B = (g.C + 15) / 16;
    const std::vector<float> x = normal(size_t(g.N * g.C * HW), 9);
    std::vector<float> gates = normal(size_t(g.N * g.C), 10);
    for (float& v : gates) v = 1.f / (1.f + std::exp(-v));  // positive, as sigmoid gates are
    const std::vector<float> xb = to_blocked(x, g.N, g.C, HW, 1e30f);
    std::vector<float> y(size_t(g.N * B * Ho * Wo * 16), -7.f);
    pool_gate_blocked16(y.data(), xb.data(), gates.data(), g.N, g.C, g.H, g.W);
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const float* xc = x.data() + (n * g.C + c) * HW;
            const float mx = std::max(std::max(xc[2 * oh * g.W + 2 * ow], xc[2 * oh * g.W + 2 * ow + 1]),
                                      std::max(xc[(2 * oh + 1) * g.W + 2 * ow], xc[(2 * oh + 1) * g.W + 2 * ow + 1]));
            const float got = y[size_t(((n * B + c / 16) * Ho * Wo + oh * Wo + ow) * 16 + c % 16)];
            EXPECT_FLOAT_EQ(got, mx * gates[size_t(n * g.C + c)]) << g.C << " " << n << " " << c;
          }
  }
}

}  // namespace
}  // namespace focus
