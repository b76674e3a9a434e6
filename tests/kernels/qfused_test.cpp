// Fused int8 row pipelines (kernels/qfused.hpp) on every path the CPU runs: against the same
// computation built from primitives (layer_norm_forward, qlinear_forward, unary_forward(Gelu), a
// plain add), against a double product of the dequantised operands, and within quantisation error
// of the F32 layer; strided rows, the residual add, several threads, and the shape check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/norm.hpp"
#include "focus/kernels/qfused.hpp"
#include "focus/kernels/unary.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"
#include "support/expect_error.hpp"

using namespace focus;

namespace {

using focus::testing::expect_error;

const QPath kPaths[] = {QPath::Scalar, QPath::Avx2, QPath::Vnni512};

struct Shape {
  int64_t M, N, K;
};
// One row; the vit's QKV (50 tokens, 3 x 64 out of 64) and MLP; off the row blocks (48) and tiles.
const Shape kShapes[] = {{1, 8, 16}, {50, 192, 64}, {97, 13, 33}, {200, 128, 64}};

std::vector<float> normal(int64_t n, Rng& rng, float scale = 1.f, float shift = 0.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = float(rng.normal()) * scale + shift;
  return v;
}

// The unfused composition: ep(qlinear(LN(x))) written or added into y.
void composed(std::vector<float>& y, const std::vector<float>& x, int64_t M, const QWeight& w,
              const std::vector<float>& bias, QEpilogue ep, const RowNorm& norm, bool accumulate) {
  std::vector<float> t(x), mean(static_cast<size_t>(M)), rstd(static_cast<size_t>(M)), v(static_cast<size_t>(M * w.N));
  if (norm.weight)
    layer_norm_forward<float>(t.data(), mean.data(), rstd.data(), x.data(), norm.weight, norm.bias,
                              M, w.K, double(norm.eps));
  qlinear_forward(v.data(), w.N, t.data(), w.K, M, w, bias.data(), QEpilogue::None);
  if (ep == QEpilogue::Gelu) unary_forward<float>(UnaryOp::Gelu, v.data(), v.data(), M * w.N, 0.0);
  for (size_t i = 0; i < v.size(); ++i) y[i] = accumulate ? y[i] + v[i] : v[i];
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

double rel_l2(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

TEST(QFused, LinearEqualsTheComposedPrimitives) {
  Rng rng(5);
  for (QPath path : kPaths) {
    if (!qpath_supported(path)) continue;
    for (const Shape& s : kShapes) {
      const auto W = normal(s.N * s.K, rng, 0.2f), X = normal(s.M * s.K, rng, 2.f, 0.5f);
      const auto b = normal(s.N, rng), lw = normal(s.K, rng, 0.3f, 1.f), lb = normal(s.K, rng, 0.1f);
      const QWeight w = pack_qweight(W.data(), s.N, s.K, path);
      for (bool ln : {false, true})
        for (QEpilogue ep : {QEpilogue::None, QEpilogue::Gelu})
          for (bool acc : {false, true}) {
            const RowNorm norm = ln ? RowNorm{lw.data(), lb.data(), 1e-5f} : RowNorm{};
            std::vector<float> want = normal(s.M * s.N, rng), got = want;
            const std::vector<float> y0 = want;
            composed(want, X, s.M, w, b, ep, norm, acc);
            qlinear_fused(got.data(), s.N, X.data(), s.K, s.M, w, b.data(), ep, norm, acc);
            // The same integers and scales: equal, up to the vector GELU's tail elements...
            float tol = ep == QEpilogue::Gelu ? 1e-5f : 0.f;
            if (ln && path == QPath::Vnni512 && s.K % 16 == 0) {
              // ... except where the VNNI path normalises and quantises in registers: there
              // exactly the product of its own rows, and within one quantisation step of the
              // composition.
              std::vector<int8_t> q(size_t(s.M * s.K));
              std::vector<float> sx(size_t(s.M)), mine = y0;
              quantize_rows_layer_norm_for(w, q.data(), s.K, sx.data(), X.data(), s.K, s.M,
                                           norm.weight, norm.bias, norm.eps);
              qgemm_dequant(mine.data(), s.N, q.data(), s.K, s.M, w, sx.data(), b.data(), acc);
              if (ep == QEpilogue::None) { EXPECT_EQ(got, mine) << s.M << "x" << s.N << "x" << s.K; }
              float step = 0;
              for (float v : sx) step = std::max(step, v);
              tol = step * *std::max_element(w.scale.begin(), w.scale.end()) * 127.f;
            }
            ASSERT_LE(max_abs_diff(got, want), tol)
                << qpath_name(path) << " " << s.M << "x" << s.N << "x" << s.K << " ln " << ln
                << " acc " << acc;
          }
    }
  }
}

// The dequantised product against a double product of the dequantised operands (the LayerNorm's
// rows quantised by the reference quantiser), and within quantisation error of the F32 layer.
TEST(QFused, LinearAgainstADoubleProductAndTheF32Layer) {
  Rng rng(6);
  for (QPath path : kPaths) {
    if (!qpath_supported(path)) continue;
    const int64_t M = 50, N = 192, K = 64;
    const auto W = normal(N * K, rng, 0.2f), X = normal(M * K, rng, 3.f, 1.f), b = normal(N, rng);
    const auto lw = normal(K, rng, 0.3f, 1.f), lb = normal(K, rng, 0.1f);
    const QWeight w = pack_qweight(W.data(), N, K, path);
    std::vector<float> y(size_t(M * N));
    qlinear_fused(y.data(), N, X.data(), K, M, w, b.data(), QEpilogue::None,
                  RowNorm{lw.data(), lb.data(), 1e-5f}, false);
    std::vector<float> t(size_t(M * K)), mean(static_cast<size_t>(M)), rstd(static_cast<size_t>(M)), sx(static_cast<size_t>(M));
    layer_norm_forward<float>(t.data(), mean.data(), rstd.data(), X.data(), lw.data(), lb.data(),
                              M, K, 1e-5);
    std::vector<int8_t> q(size_t(M * K));
    quantize_rows(q.data(), K, sx.data(), t.data(), K, M, K);
    std::vector<double> exact(size_t(M * N)), f32(size_t(M * N));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double e = b[size_t(n)], f = b[size_t(n)];
        for (int64_t k = 0; k < K; ++k) {
          e += double(q[size_t(m * K + k)]) * sx[size_t(m)] *
               (double(w.q[size_t(n * K + k)]) * w.scale[size_t(n)]);
          f += double(t[size_t(m * K + k)]) * W[size_t(n * K + k)];
        }
        exact[size_t(m * N + n)] = e, f32[size_t(m * N + n)] = f;
      }
    EXPECT_LT(rel_l2(y, exact), 1e-6) << qpath_name(path);
    const double err = rel_l2(y, f32);
    EXPECT_GT(err, 0.0) << qpath_name(path);
    EXPECT_LT(err, 0.03) << qpath_name(path);
  }
}

// Rows read through a stride wider than K (the LayerNorm's input) give the packed rows' answer.
TEST(QFused, StridedRowsAndThreads) {
  Rng rng(7);
  const int64_t M = 200, N = 128, K = 64, ld = 80;
  const auto W = normal(N * K, rng, 0.2f), Xs = normal(M * ld, rng), b = normal(N, rng);
  const auto lw = normal(K, rng, 0.3f, 1.f), lb = normal(K, rng, 0.1f);
  std::vector<float> X(size_t(M * K));
  for (int64_t m = 0; m < M; ++m)
    std::copy(Xs.begin() + m * ld, Xs.begin() + m * ld + K, X.begin() + m * K);
  const QWeight w = pack_qweight(W.data(), N, K);
  const RowNorm norm{lw.data(), lb.data(), 1e-5f};
  std::vector<float> packed(size_t(M * N)), strided(size_t(M * N)), one(size_t(M * N));
  qlinear_fused(packed.data(), N, X.data(), K, M, w, b.data(), QEpilogue::None, norm, false);
  qlinear_fused(strided.data(), N, Xs.data(), ld, M, w, b.data(), QEpilogue::None, norm, false);
  EXPECT_EQ(strided, packed);
  {
    ScopedThreads threads(1);
    qlinear_fused(one.data(), N, X.data(), K, M, w, b.data(), QEpilogue::None, norm, false);
  }
  EXPECT_EQ(one, packed);
}

// h += linear2(gelu(linear1(LN(h)))) against the composition of the primitives.
TEST(QFused, MlpEqualsTheComposedPrimitives) {
  Rng rng(8);
  for (QPath path : kPaths) {
    if (!qpath_supported(path)) continue;
    for (int64_t M : {1, 50, 149}) {
      const int64_t D = 64, F = 128;
      const auto W1 = normal(F * D, rng, 0.2f), W2 = normal(D * F, rng, 0.1f);
      const auto b1 = normal(F, rng), b2 = normal(D, rng);
      const auto lw = normal(D, rng, 0.3f, 1.f), lb = normal(D, rng, 0.1f);
      const QWeight w1 = pack_qweight(W1.data(), F, D, path), w2 = pack_qweight(W2.data(), D, F, path);
      const RowNorm norm{lw.data(), lb.data(), 1e-5f};
      const auto h0 = normal(M * D, rng, 2.f);
      std::vector<float> hidden(size_t(M * F), 0.f), want = h0, got = h0;
      composed(hidden, h0, M, w1, b1, QEpilogue::Gelu, norm, false);
      composed(want, hidden, M, w2, b2, QEpilogue::None, RowNorm{}, true);
      qmlp_residual(got.data(), D, M, norm, w1, b1.data(), w2, b2.data());
      // A GELU tail element off by an ulp can move one hidden value across a rounding step.
      EXPECT_LT(max_abs_diff(got, want), 1e-3f) << qpath_name(path) << " M " << M;
      EXPECT_NE(got, h0);
    }
  }
}

TEST(QFused, MlpRefusesLinearsThatDoNotChain) {
  Rng rng(9);
  const auto W1 = normal(128 * 64, rng), W2 = normal(64 * 100, rng);
  const QWeight w1 = pack_qweight(W1.data(), 128, 64), w2 = pack_qweight(W2.data(), 64, 100);
  std::vector<float> h(64);
  expect_error<ValueError>([&] { qmlp_residual(h.data(), 64, 1, RowNorm{}, w1, nullptr, w2, nullptr); },
                           {"do not chain"});
}

}  // namespace
