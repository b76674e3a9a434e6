// Every GEMM kernel (blas, onednn, small) against the reference, all transpose combinations, odd sizes,
// alpha/beta, F32 and F64; the row-dot kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <limits>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/gemv.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

// The rounding error any summation order may make in C = 0.5 op(A) op(B) + 2 C (Higham's
// bound), twice over since the reference rounds too: 2 gamma_(K+2) * (0.5 |op(A)| |op(B)| + 2 |C|) per element, with gamma_n = n u / (1 - n u)
// and u the unit roundoff of T. A kernel that drops or repeats one term misses it by far, in F32
// and in F64 alike (a fixed 1e-4 would let an F64 kernel lose 11 digits).
template <class T>
std::vector<T> error_bound(bool ta, bool tb, int64_t M, int64_t N, int64_t K, std::vector<T> A,
                           std::vector<T> B, std::vector<T> C) {
  for (auto* v : {&A, &B, &C})
    for (T& x : *v) x = std::abs(x);
  gemm_reference<T>(ta, tb, M, N, K, T(0.5), A.data(), ta ? M : K, B.data(), tb ? K : N, T(2),
                    C.data(), N);
  const double u = std::numeric_limits<T>::epsilon() / 2, n = static_cast<double>(K + 2);
  for (T& x : C) x = static_cast<T>(2 * n * u / (1 - n * u) * x);  // both sides may err
  return C;
}

template <class T>
void check_kernel(const char* name,
                  void (*kernel)(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,
                                 const T*, int64_t, T, T*, int64_t)) {
  Rng rng(7);
  for (int64_t M : {1, 5, 33, 70})
    for (int64_t N : {1, 7, 64})
      for (int64_t K : {1, 9, 65})
        for (int t = 0; t < 4; ++t) {
          const bool ta = t & 1, tb = t & 2;
          std::vector<T> A(M * K), B(K * N), C(M * N), R(M * N);
          for (auto& v : A) v = static_cast<T>(rng.normal());
          for (auto& v : B) v = static_cast<T>(rng.normal());
          for (size_t i = 0; i < C.size(); ++i) C[i] = R[i] = static_cast<T>(rng.normal());
          const std::vector<T> R0 = R;
          const int64_t lda = ta ? M : K, ldb = tb ? K : N;
          kernel(ta, tb, M, N, K, T(0.5), A.data(), lda, B.data(), ldb, T(2), C.data(), N);
          gemm_reference<T>(ta, tb, M, N, K, T(0.5), A.data(), lda, B.data(), ldb, T(2), R.data(), N);
          const std::vector<T> bound = error_bound<T>(ta, tb, M, N, K, A, B, R0);
          for (size_t i = 0; i < C.size(); ++i)
            ASSERT_NEAR(C[i], R[i], bound[i])
                << name << " M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb;
        }
}

TEST(Gemm, SmallMatchesReference) {
  check_kernel<float>("small", &gemm_small<float>);
  check_kernel<double>("small", &gemm_small<double>);
}

TEST(Gemm, SkinnyTimesTransposedMatchesReference) {
  // x (M, K) @ W (N, K)^T with few rows (M <= 16) takes the small kernel's threaded row-dot path
  // at any size (auto dispatch); odd N and K exercise the tails. The portable loop too.
  Rng rng(3);
  const int64_t N = 2003, K = 257;
  for (int64_t M : {1, 3, 4, 5, 16}) {
    std::vector<float> A(M * K), B(N * K), C(M * N), R(M * N);
    for (auto& v : A) v = static_cast<float>(rng.normal());
    for (auto& v : B) v = static_cast<float>(rng.normal());
    for (size_t i = 0; i < C.size(); ++i) C[i] = R[i] = static_cast<float>(rng.normal());
    std::vector<float> P = C;
    gemm(false, true, M, N, K, 0.5f, A.data(), K, B.data(), K, 2.f, C.data(), N);
    gemm_row_dots_portable<float>(M, N, K, 0.5f, A.data(), K, B.data(), K, 2.f, P.data(), N);
    gemm_reference<float>(false, true, M, N, K, 0.5f, A.data(), K, B.data(), K, 2.f, R.data(), N);
    for (size_t i = 0; i < C.size(); ++i) {
      ASSERT_NEAR(C[i], R[i], 1e-4 * (1 + std::abs(R[i]))) << "M=" << M << " at " << i;
      ASSERT_NEAR(P[i], R[i], 1e-4 * (1 + std::abs(R[i]))) << "portable M=" << M << " at " << i;
    }
  }
}

TEST(Gemm, BlasMatchesReference) {
  ASSERT_TRUE(blas_available()) << gemm_backend_info();
  check_kernel<float>("blas", &gemm_blas<float>);
  check_kernel<double>("blas", &gemm_blas<double>);
}

TEST(Gemm, OneDnnMatchesReference) {
  check_kernel<float>("onednn", &gemm_onednn);
  // Sizes past oneDNN's blocking (its kernels pack 48-64 columns and split K), through the
  // dispatch as the models call it, and with leading dimensions wider than the rows.
  Rng rng(11);
  const GemmKernel was = gemm_kernel();
  set_gemm_kernel(GemmKernel::OneDnn);
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{517, 259, 1031}, {2048, 80, 256}}) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
      std::vector<float> A((ta ? K : M) * lda), B((tb ? N : K) * ldb), C(M * ldc), R(M * ldc);
      for (auto& v : A) v = static_cast<float>(rng.normal());
      for (auto& v : B) v = static_cast<float>(rng.normal());
      for (size_t i = 0; i < C.size(); ++i) C[i] = R[i] = static_cast<float>(rng.normal());
      gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.f, C.data(), ldc);
      gemm_reference<float>(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.f, R.data(), ldc);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j)
          ASSERT_NEAR(C[i * ldc + j], R[i * ldc + j], 2e-5 * std::sqrt(double(K)) * 8)
              << "M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb;
    }
  }
  // F64 asked of oneDNN runs the BLAS (oneDNN has no dgemm): still right.
  std::vector<double> a{1, 2, 3, 4}, b{5, 6, 7, 8}, c(4);
  gemm(false, false, 2, 2, 2, 1.0, a.data(), 2, b.data(), 2, 0.0, c.data(), 2);
  EXPECT_EQ(c, (std::vector<double>{19, 22, 43, 50}));
  set_gemm_kernel(was);
}

TEST(Gemm, BlasCoreFollowsTheActiveIsa) {
  // The trap: Debian's OpenBLAS picks a slow core (Prescott, or an inherited Haswell) on AVX-512
  // CPUs unless the core is chosen before it loads; and a forced ISA (FOCUS_FORCE_ISA=avx2 on an
  // AVX-512 machine) must multiply as that machine would. The loader must have done both.
  const std::string info = gemm_backend_info();
  if (std::getenv("FOCUS_BLAS_CORETYPE")) GTEST_SKIP() << "core forced by FOCUS_BLAS_CORETYPE";
  const std::string want = blas_core_for(active_isa());
  EXPECT_NE(info.find("core " + want), std::string::npos) << info << " (active ISA "
                                                          << isa_name(active_isa()) << ")";
  EXPECT_EQ(std::string(blas_core_for(Isa::Avx512)), "SkylakeX");
  EXPECT_EQ(std::string(blas_core_for(Isa::Avx2)), "Haswell");
}

TEST(Gemm, RejectsBadLeadingDims) {
  std::vector<float> a(6), b(6), c(4);
  EXPECT_THROW(gemm(false, false, 2, 2, 3, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2),
               std::exception);
}
