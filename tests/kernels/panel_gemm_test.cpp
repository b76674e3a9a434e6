// Packed-panel products: the layout (values, zero rows past N), and the AVX2 kernel and the
// portable reference against a double-precision product of the same (rounded) weights, on every
// row-block size (1..6 and their sums), panel tails, odd K, alpha and beta, F32 and BF16 weights,
// and a product large enough to split over threads.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/panel_gemm.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

float widen(float w) { return w; }
float widen(BFloat16 w) { return static_cast<float>(w); }

template <class W>
void check(int64_t M, int64_t N, int64_t K, float alpha, float beta, bool reference, Rng& rng) {
  const int64_t lda = K + 3, ldc = N + 5, ldw = K + 1;
  std::vector<float> A(static_cast<size_t>(M * lda)), Wf(static_cast<size_t>(N * ldw)),
      C(static_cast<size_t>(M * ldc));
  for (auto& v : A) v = static_cast<float>(rng.normal());
  for (auto& v : Wf) v = static_cast<float>(rng.normal());
  for (auto& v : C) v = static_cast<float>(rng.normal());
  if (beta == 0.0f)  // C's old contents are ignored: NaN must not leak through
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n) C[i * ldc + n] = std::nanf("");
  std::vector<W> P(static_cast<size_t>(panel_count(N) * K * kPanelRows));
  pack_panels<W>(N, K, Wf.data(), ldw, P.data());
  const std::vector<float> C0 = C;
  if (reference)
    gemm_panels_reference<W>(M, N, K, alpha, A.data(), lda, P.data(), beta, C.data(), ldc);
  else
    gemm_panels<W>(M, N, K, alpha, A.data(), lda, P.data(), beta, C.data(), ldc);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double w = widen(W(Wf[n * ldw + k]));  // the weight as packed (bf16-rounded)
        s += double(A[i * lda + k]) * w;
        mag += std::fabs(double(A[i * lda + k]) * w);
      }
      const double old = beta == 0.0f ? 0.0 : double(C0[i * ldc + n]);
      const double want = alpha * s + beta * old;
      const double tol = 1e-5 * (std::fabs(alpha) * mag + std::fabs(beta * old)) + 1e-6;
      ASSERT_NEAR(C[i * ldc + n], want, tol)
          << (reference ? "reference" : "avx2") << " M=" << M << " N=" << N << " K=" << K
          << " i=" << i << " n=" << n << " alpha=" << alpha << " beta=" << beta;
    }
    for (int64_t n = N; n < ldc; ++n)  // the padding columns of C are untouched
      ASSERT_EQ(C[i * ldc + n], C0[i * ldc + n]) << "M=" << M << " N=" << N << " col " << n;
  }
}

template <class W>
void check_all(bool reference) {
  Rng rng(91);
  for (const int64_t M : {1, 2, 3, 4, 5, 6, 7, 11, 12, 16, 17})
    for (const int64_t N : {1, 15, 16, 17, 40})
      for (const int64_t K : {1, 2, 3, 64, 67}) check<W>(M, N, K, 1.0f, 0.0f, reference, rng);
  for (const float beta : {1.0f, -0.5f}) check<W>(7, 33, 19, 0.5f, beta, reference, rng);
  check<W>(16, 1000, 256, 1.0f, 1.0f, reference, rng);  // above the threading threshold
}

bool has_avx2() { return static_cast<int>(detect_isa()) >= static_cast<int>(Isa::Avx2); }

}  // namespace

TEST(PanelGemm, PackLayoutAndZeroTail) {
  const int64_t N = 19, K = 5;
  std::vector<float> Wf(N * K);
  for (size_t i = 0; i < Wf.size(); ++i) Wf[i] = 0.25f * static_cast<float>(i) + 1.0f / 3.0f;
  std::vector<float> P(static_cast<size_t>(panel_count(N) * K * kPanelRows), -1.f);
  std::vector<BFloat16> Pb(P.size());
  pack_panels<float>(N, K, Wf.data(), K, P.data());
  pack_panels<BFloat16>(N, K, Wf.data(), K, Pb.data());
  ASSERT_EQ(panel_count(N), 2);
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < kPanelRows; ++r) {
        const int64_t n = p * kPanelRows + r, e = (p * K + k) * kPanelRows + r;
        const float want = n < N ? Wf[n * K + k] : 0.0f;
        ASSERT_EQ(P[e], want) << p << " " << k << " " << r;
        ASSERT_EQ(Pb[e].bits, BFloat16(want).bits) << p << " " << k << " " << r;
      }
}

TEST(PanelGemm, F32KernelMatchesDoubleProduct) {
  if (!has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  check_all<float>(false);
}
TEST(PanelGemm, Bf16KernelMatchesDoubleProduct) {
  if (!has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  check_all<BFloat16>(false);
}
TEST(PanelGemm, ReferenceMatchesDoubleProduct) {
  check_all<float>(true);
  check_all<BFloat16>(true);
}
TEST(PanelGemm, EmptyProductsTouchNothing) {
  std::vector<float> C(4, 7.f), A(4, 1.f);
  std::vector<float> P(16 * 4, 1.f);
  gemm_panels<float>(0, 1, 4, 1.f, A.data(), 4, P.data(), 0.f, C.data(), 1);
  gemm_panels<float>(1, 0, 4, 1.f, A.data(), 4, P.data(), 0.f, C.data(), 1);
  for (float c : C) EXPECT_EQ(c, 7.f);
}
