// bf16 precision (kernels/precision.hpp): the rounding against tensor/bf16.hpp's conversion on
// every kind of float; the switch and its refusal; every GEMM kernel and every convolution kernel
// at bf16 against the oracle (the inputs rounded to bf16, then the double reference), forward and
// every backward output, with a check that the result really moved off the F32 one; oneDNN's bf16
// matmul called directly where the CPU has bf16 units.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "focus/kernels/conv.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/kernels/precision.hpp"
#include "focus/tensor/bf16.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"
#include "support/vector_diff.hpp"

using namespace focus;
using focus::testing::max_rel_diff;

namespace {

std::vector<float> randn(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

std::vector<float> rounded(std::vector<float> v) {
  round_to_bf16(v.data(), v.data(), static_cast<int64_t>(v.size()));
  return v;
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

}  // namespace

TEST(Precision, RoundingMatchesTheBf16Type) {
  // Random bit patterns cover normals, denormals, infinities and NaNs; the listed values the ties.
  Rng rng(3);
  std::vector<float> v;
  for (int i = 0; i < 200000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng.next_u64());
    float x;
    std::memcpy(&x, &u, sizeof x);
    v.push_back(x);
  }
  for (uint32_t u : {0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x7f7fffffu, 0x00008000u, 0x80000000u,
                     0x7f800000u, 0xff800000u, 0x7fc00001u, 0xff800001u})
    v.push_back([&] { float x; std::memcpy(&x, &u, sizeof x); return x; }());
  std::vector<float> r(v.size());
  std::vector<uint16_t> h(v.size());
  round_to_bf16(r.data(), v.data(), static_cast<int64_t>(v.size()));
  to_bf16_bits(h.data(), v.data(), static_cast<int64_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t want = BFloat16(v[i]).bits;
    ASSERT_EQ(h[i], want) << std::hex << bits(v[i]);
    ASSERT_EQ(bits(r[i]), uint32_t(want) << 16) << std::hex << bits(v[i]);
  }
  // Ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
  EXPECT_EQ(BFloat16(1.0f + 0x1p-8f).bits, 0x3f80);
}

TEST(Precision, SwitchNamesAndRefusal) {
  EXPECT_EQ(compute_precision(), Precision::F32);
  EXPECT_EQ(parse_precision("bf16"), Precision::Bf16);
  EXPECT_EQ(parse_precision("f32"), Precision::F32);
  try {
    parse_precision("fp16");
    FAIL() << "fp16 accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'fp16'"), std::string::npos) << e.what();
  }
  {
    ScopedPrecision p(Precision::Bf16);
    EXPECT_EQ(compute_precision(), Precision::Bf16);
  }
  EXPECT_EQ(compute_precision(), Precision::F32);
  EXPECT_NO_THROW(check_precision_supported(Precision::F32));
  if (bf16_hardware()) {
    EXPECT_NO_THROW(check_precision_supported(Precision::Bf16));
  } else {
    try {
      check_precision_supported(Precision::Bf16);
      FAIL() << "bf16 accepted without bf16 units (active ISA " << isa_name(active_isa()) << ")";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("AVX512-BF16"), std::string::npos) << e.what();
    }
  }
  std::printf("bf16 hardware: %s (active ISA %s)\n", bf16_hardware() ? "yes" : "no",
              isa_name(active_isa()).c_str());
}

namespace {

// C = 0.5 op(A) op(B) + 2 C at bf16 against the oracle: A and B rounded to bf16, then the double
// reference. The bound is the F32 summation's (gemm_test.cpp's error_bound): the products of two
// bf16 numbers are exact in F32, so only the sums may differ.
void check_gemm_bf16(const char* name, int64_t M, int64_t N, int64_t K, bool ta, bool tb, Rng& rng) {
  const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
  const auto A = randn((ta ? K : M) * lda, rng), B = randn((tb ? N : K) * ldb, rng),
             C0 = randn(M * ldc, rng);
  std::vector<float> C = C0, F = C0;
  {
    ScopedPrecision p(Precision::Bf16);
    gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.f, C.data(), ldc);
  }
  gemm(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 2.f, F.data(), ldc);
  const auto rA = rounded(A), rB = rounded(B);
  std::vector<double> dA(rA.begin(), rA.end()), dB(rB.begin(), rB.end()), R(C0.begin(), C0.end()),
      aA(dA.size()), aB(dB.size()), bound(C0.size());
  for (size_t i = 0; i < dA.size(); ++i) aA[i] = std::abs(dA[i]);
  for (size_t i = 0; i < dB.size(); ++i) aB[i] = std::abs(dB[i]);
  for (size_t i = 0; i < R.size(); ++i) bound[i] = 2 * std::abs(R[i]);
  gemm_reference<double>(ta, tb, M, N, K, 0.5, dA.data(), lda, dB.data(), ldb, 2.0, R.data(), ldc);
  gemm_reference<double>(ta, tb, M, N, K, 0.5, aA.data(), lda, aB.data(), ldb, 1.0, bound.data(), ldc);
  const double u = std::numeric_limits<float>::epsilon() / 2, n = double(K + 2);
  double moved = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const size_t at = size_t(i * ldc + j);
      ASSERT_NEAR(C[at], R[at], 2 * n * u / (1 - n * u) * bound[at] + 1e-30)
          << name << " M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb;
      moved = std::max(moved, std::abs(double(C[at]) - double(F[at])));
    }
  // Full-mantissa inputs: the bf16 result must differ from the F32 one (bf16 really applied).
  EXPECT_GT(moved, 1e-3) << name << " M=" << M << " N=" << N << " K=" << K;
  // Past the columns: untouched.
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) ASSERT_EQ(C[size_t(i * ldc + j)], C0[size_t(i * ldc + j)]);
}

}  // namespace

TEST(Precision, EveryGemmKernelAtBf16MatchesTheOracle) {
  Rng rng(11);
  const GemmKernel saved = gemm_kernel();
  for (auto [k, name] : {std::pair{GemmKernel::Auto, "auto"}, std::pair{GemmKernel::Reference, "reference"},
                         std::pair{GemmKernel::Small, "small"}, std::pair{GemmKernel::Blas, "blas"},
                         std::pair{GemmKernel::OneDnn, "onednn"}}) {
    set_gemm_kernel(k);
    // Tiny (the small kernel), gemv-like (x W^T with few rows), and big enough for oneDNN.
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{5, 7, 9}, {3, 200, 130},
                           {70, 64, 65}, {128, 96, 200}})
      for (int t = 0; t < 4; ++t) check_gemm_bf16(name, M, N, K, t & 1, t & 2, rng);
  }
  set_gemm_kernel(saved);
}

TEST(Precision, OneDnnBf16MatmulWhereTheCpuHasBf16) {
  Rng rng(13);
  const int64_t M = 96, N = 80, K = 144;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const auto A = randn(M * K, rng), B = randn(K * N, rng);
    std::vector<float> C(M * N, 1.f), R(M * N, 1.f);
    const bool ran = gemm_bf16_onednn(ta, tb, M, N, K, 1.f, A.data(), ta ? M : K, B.data(),
                                      tb ? K : N, 0.5f, C.data(), N);
    if (bf16_hardware()) { EXPECT_TRUE(ran) << "oneDNN refused a bf16 matmul on bf16 hardware"; }
    if (!onednn_enabled()) { EXPECT_FALSE(ran); }
    if (!ran) continue;
    const auto rA = rounded(A), rB = rounded(B);
    gemm_reference<float>(ta, tb, M, N, K, 1.f, rA.data(), ta ? M : K, rB.data(), tb ? K : N, 0.5f,
                          R.data(), N);
    EXPECT_LT(max_rel_diff(C, R), 2e-5) << "ta=" << ta << " tb=" << tb;
  }
}

namespace {

// The dispatchers at bf16 (with kernel k) against the reference at bf16 (inputs rounded, then the
// direct loops in double): forward with bias, backward dx, dw, db.
void check_conv_bf16(ConvKernel k, const char* name, const ConvGeom& g, Rng& rng) {
  const int64_t xn = g.N * g.C * g.H * g.W, wn = g.O * g.C * g.KH * g.KW, yn = g.N * g.O * g.OH() * g.OW();
  const auto x = randn(xn, rng), w = randn(wn, rng), b = randn(g.O, rng), dy = randn(yn, rng);
  std::vector<float> y(yn), yr(yn), yf(yn), dx(xn), dxr(xn), dw(wn), dwr(wn), db(g.O), dbr(g.O);
  const ConvKernel saved = conv_kernel();
  {
    ScopedPrecision p(Precision::Bf16);
    set_conv_kernel(ConvKernel::Reference);
    conv2d_forward(yr.data(), x.data(), w.data(), b.data(), g);
    conv2d_backward(dxr.data(), dwr.data(), dbr.data(), dy.data(), x.data(), w.data(), g);
    set_conv_kernel(k);
    conv2d_forward(y.data(), x.data(), w.data(), b.data(), g);
    conv2d_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), g);
  }
  conv2d_forward(yf.data(), x.data(), w.data(), b.data(), g);  // F32, kernel k
  set_conv_kernel(saved);
  // The oracle itself: the reference on rounded inputs, by hand.
  std::vector<float> yo(yn);
  const auto rx = rounded(x), rw = rounded(w);
  conv2d_forward_reference(yo.data(), rx.data(), rw.data(), b.data(), g);
  ASSERT_EQ(yr, yo);
  const auto where = ::testing::Message() << name << " N=" << g.N << " C=" << g.C << " H=" << g.H
                                          << " O=" << g.O << " K=" << g.KH << " s=" << g.stride;
  EXPECT_LT(max_rel_diff(y, yr), 2e-5) << "forward " << where;
  EXPECT_LT(max_rel_diff(dx, dxr), 2e-5) << "dx " << where;
  EXPECT_LT(max_rel_diff(dw, dwr), 2e-5) << "dw " << where;
  // The im2col kernel sums db from dy unrounded (it needs no product): bf16's rounding apart.
  EXPECT_LT(max_rel_diff(db, dbr), 1e-2) << "db " << where;
  EXPECT_GT(max_rel_diff(y, yf), 1e-4) << "bf16 not applied: " << where;
}

}  // namespace

TEST(Precision, EveryConvKernelAtBf16MatchesTheOracle) {
  Rng rng(17);
  for (auto [k, name] : {std::pair{ConvKernel::Auto, "auto"}, std::pair{ConvKernel::Im2col, "im2col"},
                         std::pair{ConvKernel::OneDnn, "onednn"}, std::pair{ConvKernel::Winograd, "winograd"}})
    for (const ConvGeom& g : {ConvGeom{3, 1, 28, 28, 32, 3, 3, 1, 1}, ConvGeom{3, 32, 14, 14, 64, 3, 3, 1, 1},
                              ConvGeom{2, 128, 7, 7, 128, 3, 3, 1, 1}, ConvGeom{2, 17, 10, 11, 9, 3, 3, 2, 1},
                              ConvGeom{2, 24, 6, 5, 19, 1, 1, 1, 0}})
      check_conv_bf16(k, name, g, rng);
}

TEST(Precision, GemmAtBf16InsideAParallelRegion) {
  // Data-parallel training calls gemm() from every thread of a parallel region at once: each
  // call gets a one-thread primitive and its own scratch, and the results match the oracle.
  const int64_t M = 64, N = 96, K = 128;
  std::vector<std::vector<float>> A(2), B(2), C(2), R(2);
  Rng rng(29);
  for (int t = 0; t < 2; ++t) {
    A[t] = randn(M * K, rng);
    B[t] = randn(N * K, rng);
    C[t].assign(M * N, 0.f);
    R[t].assign(M * N, 0.f);
    gemm_reference<float>(false, true, M, N, K, 1.f, rounded(A[t]).data(), K, rounded(B[t]).data(), K,
                          0.f, R[t].data(), N);
  }
  {
    ScopedPrecision p(Precision::Bf16);
#pragma omp parallel num_threads(2)
    for (int rep = 0; rep < 20; ++rep) {
      const int t = omp_get_thread_num();
      gemm(false, true, M, N, K, 1.f, A[t].data(), K, B[t].data(), K, 0.f, C[t].data(), N);
    }
  }
  for (int t = 0; t < 2; ++t) EXPECT_LT(max_rel_diff(C[t], R[t]), 2e-5) << "thread " << t;
}
