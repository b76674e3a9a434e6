// int8 GEMM and convolution (kernels/qgemm.hpp, qconv.hpp): every path the CPU can run against
// the scalar reference (the int32 sums exactly), the dequantised product against a double
// product of the dequantised values, and against the F32 product within quantisation error; odd
// shapes (M, N, K off every tile and panel size), K large with full-range values (where u8 x s8
// pair sums in int16 would saturate), zero rows, epilogues, packing errors; the int8 convolution
// against the F32 reference convolution and the same integers on every path.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "focus/kernels/conv.hpp"
#include "focus/kernels/norm.hpp"
#include "focus/kernels/qconv.hpp"
#include "focus/kernels/qgemm.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

const QPath kPaths[] = {QPath::Scalar, QPath::Avx2, QPath::Vnni512};

struct Shape {
  int64_t M, N, K;
};
// Off the tiles (6 x 64 VNNI, 4 x 24 AVX2), the panels (16 / 8 channels, K by 4), the row blocks
// (96), and one with a K where the shifted sums grow large.
const Shape kShapes[] = {{1, 1, 1},    {7, 13, 5},   {13, 70, 33},  {6, 64, 4},
                         {97, 17, 300}, {5, 100, 9}, {200, 49, 31}, {130, 65, 4099}};

std::vector<float> normal(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = float(rng.normal());
  return v;
}

// The scalar path's integers on the same quantised rows.
std::vector<int32_t> reference_acc(const std::vector<int8_t>& qa, int64_t M, const QWeight& w) {
  std::vector<int32_t> acc(static_cast<size_t>(M * w.N));
  qgemm_s32_scalar(acc.data(), w.N, qa.data(), w.K, M, w);
  return acc;
}

TEST(QGemm, EveryPathGivesTheReferenceIntegers) {
  Rng rng(11);
  for (const Shape& s : kShapes) {
    const auto W = normal(s.N * s.K, rng), X = normal(s.M * s.K, rng);
    std::vector<int8_t> qa(static_cast<size_t>(s.M * s.K));
    std::vector<float> sx(static_cast<size_t>(s.M));
    quantize_rows(qa.data(), s.K, sx.data(), X.data(), s.K, s.M, s.K);
    const QWeight ref = pack_qweight(W.data(), s.N, s.K, QPath::Scalar);
    const auto want = reference_acc(qa, s.M, ref);
    // The reference itself against a plain sum of the quantised values.
    for (int64_t m = 0; m < s.M; m += 5)
      for (int64_t n = 0; n < s.N; n += 3) {
        int64_t sum = 0;
        for (int64_t k = 0; k < s.K; ++k) sum += int64_t(qa[size_t(m * s.K + k)]) * ref.q[size_t(n * s.K + k)];
        ASSERT_EQ(want[size_t(m * s.N + n)], sum);
      }
    for (QPath p : kPaths) {
      if (!qpath_supported(p)) continue;
      const QWeight w = pack_qweight(W.data(), s.N, s.K, p);
      EXPECT_EQ(w.q, ref.q);
      const int64_t ldc = s.N + 3;
      std::vector<int32_t> acc(static_cast<size_t>(s.M * ldc), -7);
      qgemm_s32(acc.data(), ldc, qa.data(), s.K, s.M, w);
      for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.N; ++n)
          ASSERT_EQ(acc[size_t(m * ldc + n)], want[size_t(m * s.N + n)])
              << qpath_name(p) << " " << s.M << "x" << s.N << "x" << s.K << " at " << m << "," << n;
      for (int64_t m = 0; m < s.M; ++m)  // the padding columns are not written
        for (int64_t n = s.N; n < ldc; ++n) ASSERT_EQ(acc[size_t(m * ldc + n)], -7);
    }
  }
}

// qgemm_dequant (the VNNI kernel dequantises in its store) equals qgemm_s32 followed by
// qdequantize_rows, = and +=, with and without a bias, on strided outputs; columns past N and
// rows past M are not written.
TEST(QGemm, DequantisingProductMatchesComposition) {
  Rng rng(23);
  for (const Shape& s : kShapes) {
    const auto W = normal(s.N * s.K, rng), X = normal(s.M * s.K, rng), b = normal(s.N, rng);
    std::vector<int8_t> qa(static_cast<size_t>(s.M * s.K));
    std::vector<float> sx(static_cast<size_t>(s.M));
    quantize_rows(qa.data(), s.K, sx.data(), X.data(), s.K, s.M, s.K);
    for (QPath p : kPaths) {
      if (!qpath_supported(p)) continue;
      const QWeight w = pack_qweight(W.data(), s.N, s.K, p);
      std::vector<int32_t> acc(static_cast<size_t>(s.M * s.N));
      qgemm_s32(acc.data(), s.N, qa.data(), s.K, s.M, w);
      for (const float* bias : {b.data(), static_cast<const float*>(nullptr)})
        for (bool accumulate : {false, true}) {
          const int64_t ldy = s.N + 5;
          const auto y0 = normal(s.M * ldy, rng);
          std::vector<float> want = y0, got = y0;
          std::vector<float> d(static_cast<size_t>(s.M * s.N));
          qdequantize_rows(d.data(), s.N, acc.data(), s.N, sx.data(), s.M, w, bias);
          for (int64_t m = 0; m < s.M; ++m)
            for (int64_t n = 0; n < s.N; ++n) {
              float& o = want[size_t(m * ldy + n)];
              o = accumulate ? o + d[size_t(m * s.N + n)] : d[size_t(m * s.N + n)];
            }
          qgemm_dequant(got.data(), ldy, qa.data(), s.K, s.M, w, sx.data(), bias, accumulate);
          for (int64_t m = 0; m < s.M; ++m)
            for (int64_t n = 0; n < ldy; ++n) {
              const float e = want[size_t(m * ldy + n)], g = got[size_t(m * ldy + n)];
              if (n >= s.N) {
                ASSERT_EQ(g, e) << "wrote padding column " << n;
                continue;
              }
              ASSERT_NEAR(g, e, 1e-5f * (1.0f + std::fabs(e)))
                  << qpath_name(p) << " " << s.M << "x" << s.N << "x" << s.K << " bias "
                  << (bias != nullptr) << " accumulate " << accumulate << " at " << m << "," << n;
            }
        }
    }
  }
}

// The LayerNorm + quantisation of the VNNI path (a row in registers) against layer_norm_row and
// the reference quantiser: the same scales to float rounding, integers at most one step apart
// (a value on a rounding edge), nearly all equal; K outside what it takes is declined.
TEST(QGemm, LayerNormQuantiserMatchesComposition) {
  Rng rng(29);
  for (int64_t K : {16, 64, 128, 256}) {
    const int64_t M = 37;
    auto X = normal(M * (K + 3), rng), g = normal(K, rng), b = normal(K, rng);
    for (int64_t i = 0; i < M * (K + 3); i += 7) X[size_t(i)] = 3.0f * X[size_t(i)] + 1.5f;
    std::vector<float> t(static_cast<size_t>(M * K)), stat(static_cast<size_t>(2 * M)),
        want_s(static_cast<size_t>(M)), got_s(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m)
      layer_norm_row<float>(t.data() + m * K, &stat[size_t(m)], &stat[size_t(M + m)],
                            X.data() + m * (K + 3), g.data(), b.data(), K, 1e-5);
    std::vector<int8_t> want(size_t(M * K)), got(size_t(M * K));
    quantize_rows(want.data(), K, want_s.data(), t.data(), K, M, K);
    for (QPath p : kPaths) {
      if (!qpath_supported(p)) continue;
      const auto W = normal(3 * K, rng);
      const QWeight w = pack_qweight(W.data(), 3, K, p);
      quantize_rows_layer_norm_for(w, got.data(), K, got_s.data(), X.data(), K + 3, M, g.data(),
                                   b.data(), 1e-5f);
      int64_t differ = 0;
      for (int64_t m = 0; m < M; ++m) {
        ASSERT_NEAR(got_s[size_t(m)], want_s[size_t(m)], 1e-5f * want_s[size_t(m)]) << qpath_name(p) << " K " << K;
        for (int64_t k = 0; k < K; ++k) {
          const int d = std::abs(int(got[size_t(m * K + k)]) - int(want[size_t(m * K + k)]));
          ASSERT_LE(d, 1) << qpath_name(p) << " K " << K << " at " << m << "," << k;
          differ += d;
        }
      }
      EXPECT_LE(differ, M * K / 100) << qpath_name(p) << " K " << K;
      if (p != QPath::Vnni512) { EXPECT_EQ(differ, 0) << qpath_name(p); }
    }
  }
  if (qpath_supported(QPath::Vnni512)) {
    std::vector<float> x(300, 1.0f), g(300, 1.0f), b(300, 0.0f), s(1);
    std::vector<int8_t> q(300);
    for (int64_t K : {8, 24, 272})
      EXPECT_FALSE(quantize_rows_layer_norm_avx512(q.data(), K, s.data(), x.data(), K, 1, K,
                                                   g.data(), b.data(), 1e-5f)) << K;
  }
}

// The vector quantisers give the reference's integers and scales (ties included: values placed
// exactly on .5 steps).
TEST(QGemm, VectorQuantisersMatchReference) {
  Rng rng(21);
  for (int64_t K : {1, 7, 8, 15, 16, 17, 33, 300}) {
    const int64_t M = 5;
    auto X = normal(M * K, rng);
    for (int64_t k = 0; k < K; ++k) X[size_t(K + k)] = 0;  // a zero row
    for (int64_t k = 0; k < K; ++k) X[size_t(2 * K + k)] = float(k % 9) * 0.5f - 2.0f;  // ties
    X[size_t(2 * K)] = 127.0f / 2;  // scale 0.5: x / scale lands on .5 steps
    std::vector<int8_t> want(static_cast<size_t>(M * K)), got(static_cast<size_t>(M * K));
    std::vector<float> sw(static_cast<size_t>(M)), sg(static_cast<size_t>(M));
    quantize_rows(want.data(), K, sw.data(), X.data(), K, M, K);
    EXPECT_EQ(sw[1], 0.0f);
    using Fn = void (*)(int8_t*, int64_t, float*, const float*, int64_t, int64_t, int64_t);
    const std::pair<QPath, Fn> fns[] = {{QPath::Avx2, quantize_rows_avx2},
                                        {QPath::Vnni512, quantize_rows_avx512}};
    for (auto [p, fn] : fns) {
      if (!qpath_supported(p)) continue;
      fn(got.data(), K, sg.data(), X.data(), K, M, K);
      EXPECT_EQ(got, want) << qpath_name(p) << " K " << K;
      EXPECT_EQ(sg, sw) << qpath_name(p) << " K " << K;
    }
  }
}

// Full range everywhere: every quantised value is +-127, so u8 x s8 pairs reach 255 * 127 * 2
// (what vpmaddubsw would saturate) and K = 4099 sums reach 127^2 * 4099.
TEST(QGemm, FullRangeLargeKDoesNotSaturate) {
  const int64_t M = 9, N = 21, K = 4099;
  std::vector<float> W(static_cast<size_t>(N * K)), X(static_cast<size_t>(M * K));
  for (int64_t i = 0; i < N * K; ++i) W[size_t(i)] = (i % 3 == 0) ? -1.0f : 1.0f;
  for (int64_t i = 0; i < M * K; ++i) X[size_t(i)] = (i % 5 == 0) ? -2.0f : 2.0f;
  for (int64_t m = 0; m < M; ++m) X[size_t(m * K + m)] = 2.0f;  // rows differ a little
  std::vector<int8_t> qa(static_cast<size_t>(M * K));
  std::vector<float> sx(static_cast<size_t>(M));
  quantize_rows(qa.data(), K, sx.data(), X.data(), K, M, K);
  for (int8_t v : qa) ASSERT_EQ(std::abs(int(v)), 127);
  for (QPath p : kPaths) {
    if (!qpath_supported(p)) continue;
    const QWeight w = pack_qweight(W.data(), N, K, p);
    std::vector<int32_t> acc(static_cast<size_t>(M * N));
    qgemm_s32(acc.data(), N, qa.data(), K, M, w);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += int64_t(qa[size_t(m * K + k)]) * w.q[size_t(n * K + k)];
        ASSERT_EQ(acc[size_t(m * N + n)], sum) << qpath_name(p) << " at " << m << "," << n;
      }
  }
}

// y against the double product of the dequantised operands (exact integer sums: only the final
// float scaling rounds), and against the F32 product within quantisation error.
TEST(QGemm, DequantisedProductMatchesDoubleProduct) {
  Rng rng(5);
  for (const Shape& s : kShapes) {
    const auto W = normal(s.N * s.K, rng), B = normal(s.N, rng);
    auto X = normal(s.M * s.K, rng);
    if (s.M > 3)
      for (int64_t k = 0; k < s.K; ++k) X[size_t(2 * s.K + k)] = 0;  // a zero row: y = bias
    for (QPath p : kPaths) {
      if (!qpath_supported(p)) continue;
      const QWeight w = pack_qweight(W.data(), s.N, s.K, p);
      const int64_t ldy = s.N + 2;
      std::vector<float> y(static_cast<size_t>(s.M * ldy), 99.0f);
      qlinear_forward(y.data(), ldy, X.data(), s.K, s.M, w, B.data());
      std::vector<int8_t> qa(static_cast<size_t>(s.M * s.K));
      std::vector<float> sx(static_cast<size_t>(s.M));
      quantize_rows(qa.data(), s.K, sx.data(), X.data(), s.K, s.M, s.K);
      double err2 = 0, ref2 = 0;
      for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.N; ++n) {
          double dq = 0, f = 0, mag = 0;
          for (int64_t k = 0; k < s.K; ++k) {
            const double a = double(qa[size_t(m * s.K + k)]) * sx[size_t(m)];
            const double b = double(w.q[size_t(n * s.K + k)]) * w.scale[size_t(n)];
            dq += a * b;
            mag += std::fabs(a * b);
            f += double(X[size_t(m * s.K + k)]) * W[size_t(n * s.K + k)];
          }
          dq += B[size_t(n)];
          f += B[size_t(n)];
          const double got = y[size_t(m * ldy + n)];
          ASSERT_NEAR(got, dq, 1e-5 * (mag + std::fabs(B[size_t(n)])) + 1e-6)
              << qpath_name(p) << " " << s.M << "x" << s.N << "x" << s.K << " at " << m << "," << n;
          if (s.M > 3 && m == 2) {
            ASSERT_EQ(got, B[size_t(n)]);
          }
          err2 += (got - f) * (got - f);
          ref2 += f * f;
        }
      // 8-bit values: a few percent of the product's size at most for normal data.
      EXPECT_LT(std::sqrt(err2 / ref2), 0.03) << qpath_name(p) << " " << s.M << "x" << s.N << "x" << s.K;
      for (int64_t m = 0; m < s.M; ++m) ASSERT_EQ(y[size_t(m * ldy + s.N)], 99.0f);
    }
  }
}

TEST(QGemm, Epilogues) {
  Rng rng(3);
  const int64_t M = 11, N = 29, K = 40;
  const auto W = normal(N * K, rng), X = normal(M * K, rng), B = normal(N, rng);
  const QWeight w = pack_qweight(W.data(), N, K);
  std::vector<float> plain(static_cast<size_t>(M * N)), relu(static_cast<size_t>(M * N)), gelu(static_cast<size_t>(M * N));
  qlinear_forward(plain.data(), N, X.data(), K, M, w, B.data());
  qlinear_forward(relu.data(), N, X.data(), K, M, w, B.data(), QEpilogue::Relu);
  qlinear_forward(gelu.data(), N, X.data(), K, M, w, B.data(), QEpilogue::Gelu);
  int negatives = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    const double v = plain[i];
    negatives += v < 0;
    EXPECT_EQ(relu[i], v > 0 ? plain[i] : 0.0f);
    EXPECT_NEAR(gelu[i], 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))), 1e-5 * (1 + std::fabs(v)));
  }
  EXPECT_GT(negatives, 0);  // the ReLU had something to clip
}

TEST(QGemm, PackingRejectsBadWeights) {
  std::vector<float> W(12, 1.0f);
  W[7] = std::nanf("");
  EXPECT_THROW(pack_qweight(W.data(), 3, 4), ValueError);
  EXPECT_THROW(pack_qweight(W.data(), 0, 4), ValueError);
  std::vector<float> big(static_cast<size_t>(65537), 1.0f);
  EXPECT_THROW(pack_qweight(big.data(), 1, 65537), ValueError);
  // A weight packed for one path is refused by another's kernel.
  const QWeight s = pack_qweight(W.data(), 1, 4, QPath::Scalar);
  int32_t acc = 0;
  const int8_t a[4] = {1, 2, 3, 4};
  EXPECT_THROW(qgemm_s32_avx2(&acc, 1, a, 4, 1, s), ValueError);
  EXPECT_THROW(qgemm_s32_vnni512(&acc, 1, a, 4, 1, s), ValueError);
}

// The int8 convolution: within quantisation error of the F32 reference, and bit-identical on
// every path (the same integers, the same scaling).
TEST(QConv, MatchesReferenceAndAgreesAcrossPaths) {
  Rng rng(8);
  const ConvGeom geoms[] = {{3, 5, 9, 8, 7, 3, 3, 1, 1},
                            {2, 1, 28, 28, 16, 3, 3, 1, 1},
                            {4, 12, 7, 7, 20, 1, 1, 1, 0},
                            {1, 6, 11, 10, 9, 3, 3, 2, 1},
                            {2, 3, 12, 12, 8, 4, 4, 4, 0},
                            {1, 4, 20, 20, 10, 3, 3, 1, 1},  // one image: positions over threads
                            {1, 2, 9, 9, 5, 5, 5, 1, 2}};
  for (const ConvGeom& g : geoms) {
    const int64_t CKK = g.C * g.KH * g.KW, OHW = g.OH() * g.OW();
    const auto x = normal(g.N * g.C * g.H * g.W, rng), w = normal(g.O * CKK, rng),
               b = normal(g.O, rng);
    std::vector<float> ref(static_cast<size_t>(g.N * g.O * OHW));
    conv2d_forward_reference(ref.data(), x.data(), w.data(), b.data(), g);
    std::vector<float> first;
    for (QPath p : kPaths) {
      if (!qpath_supported(p)) continue;
      std::vector<float> whwc(w.size());
      conv_weight_hwc(whwc.data(), w.data(), g.O, g.C, g.KH, g.KW);
      const QWeight qw = pack_qweight(whwc.data(), g.O, CKK, p);
      std::vector<float> y(ref.size(), 99.0f);
      conv2d_forward_int8(y.data(), x.data(), qw, b.data(), g);
      double err2 = 0, ref2 = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        err2 += (double(y[i]) - ref[i]) * (double(y[i]) - ref[i]);
        ref2 += double(ref[i]) * ref[i];
      }
      EXPECT_LT(std::sqrt(err2 / ref2), 0.03) << qpath_name(p) << " C " << g.C << " K " << g.KH;
      if (first.empty()) {
        first = y;
      } else {
        EXPECT_EQ(y, first) << qpath_name(p);
      }
    }
    ASSERT_FALSE(first.empty());
  }
  const ConvGeom g{1, 2, 5, 5, 3, 3, 3, 1, 1};
  std::vector<float> w(3 * 2 * 9, 0.5f), x(2 * 25, 1.0f), y(3 * 25);
  const QWeight wrong = pack_qweight(w.data(), 3, 9);
  EXPECT_THROW(conv2d_forward_int8(y.data(), x.data(), wrong, nullptr, g), ShapeError);
}

}  // namespace
