// The vectorisable exp and normal CDF (kernels/unary.hpp) against libm: error in ulps over the
// whole normal range, the special values, and the documented flush-to-zero cutoffs; the F32
// GELU loops against double references and the scalar CDF, and the F32 ReLU loops against the
// definition: through the dispatch, and on every vector ISA the CPU has (AVX2, AVX-512).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/unary.hpp"
#include "focus/kernels/unary_loops.hpp"

using namespace focus;

namespace {

template <class T>
double ulp_error(T got, double want) {
  const double ulp = std::ldexp(1.0, std::ilogb(want) - std::numeric_limits<T>::digits + 1);
  return std::abs(double(got) - want) / ulp;
}

}  // namespace

TEST(Vexp, F32WithinTwoUlpOverTheNormalRange) {
  double worst = 0;
  for (double x = -86.5; x < 88.72; x += 1e-3) {
    const float xf = static_cast<float>(x);
    worst = std::max(worst, ulp_error(vexp(xf), std::exp(double(xf))));
  }
  EXPECT_LT(worst, 2.0);
}

TEST(Vexp, F64WithinTwoUlpOverTheNormalRange) {
  double worst = 0;
  for (double x = -708.0; x < 709.78; x += 1.3e-3)
    worst = std::max(worst, ulp_error(vexp(x), std::exp(x)));
  for (double x = -1; x < 1; x += 1.1e-5) worst = std::max(worst, ulp_error(vexp(x), std::exp(x)));
  EXPECT_LT(worst, 2.5);
}

TEST(Vexp, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(vexp(0.f), 1.f);
  EXPECT_EQ(vexp(0.0), 1.0);
  EXPECT_EQ(vexp(-inf), 0.f);
  EXPECT_EQ(vexp(-87.0f), 0.f);  // below the cutoff: flushed (exp is 1.6e-38, near denormal)
  EXPECT_EQ(vexp(-1e30f), 0.f);
  EXPECT_EQ(vexp(inf), inf);
  EXPECT_EQ(vexp(88.8f), inf);
  EXPECT_TRUE(std::isfinite(vexp(88.72f)));
  EXPECT_TRUE(std::isnan(vexp(std::nanf(""))));
  EXPECT_EQ(vexp(-std::numeric_limits<double>::infinity()), 0.0);
  EXPECT_EQ(vexp(710.0), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isfinite(vexp(709.78)));
  EXPECT_TRUE(std::isnan(vexp(std::nan(""))));
}

TEST(NormalCdf, F32RelativeErrorSmallEverywhere) {
  double worst = 0;
  for (double x = -13; x < 8; x += 1e-3) {
    const float xf = static_cast<float>(x);
    const double want = 0.5 * std::erfc(-double(xf) / std::sqrt(2.0));
    worst = std::max(worst, std::abs(normal_cdf(xf) - want) / want);
  }
  EXPECT_LT(worst, 5e-7);  // a few float ulps, in both tails
  EXPECT_EQ(normal_cdf(std::numeric_limits<float>::infinity()), 1.f);
  EXPECT_EQ(normal_cdf(-std::numeric_limits<float>::infinity()), 0.f);
  EXPECT_TRUE(std::isnan(normal_cdf(std::nanf(""))));
}

TEST(NormalCdf, GaussIsExpOfMinusHalfSquare) {
  // The second output, exp(-x^2/2) with the exponent split exactly, keeps its relative accuracy
  // far into the tail, where exp of the rounded x*x/2 would be off by up to ~5e-6.
  double worst = 0;
  for (double x = -13; x < 13; x += 1.7e-3) {
    const float xf = static_cast<float>(x);
    float gauss = 0;
    normal_cdf(xf, gauss);
    const double want = std::exp(-0.5 * double(xf) * double(xf));
    worst = std::max(worst, std::abs(gauss - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
}

// The loops under test: the dispatching entry points, or one ISA's table.
struct Loops {
  std::string name;
  simd::UnaryLoops f;
};

std::vector<Loops> all_loops() {
  std::vector<Loops> out = {
      {"dispatch",
       {[](float* y, const float* x, int64_t n) { unary_forward<float>(UnaryOp::Gelu, y, x, n, 0); },
       [](float* dx, const float* dy, const float* x, int64_t n) {
         unary_backward<float>(UnaryOp::Gelu, dx, dy, x, n, 0);
       },
       [](float* y, const float* x, int64_t n) { unary_forward<float>(UnaryOp::Relu, y, x, n, 0); },
       [](float* dx, const float* dy, const float* y, int64_t n) {
         unary_backward<float>(UnaryOp::Relu, dx, dy, y, n, 0);
       },
       [](float* y, float* d, const float* x, int64_t n) { gelu_forward_derivative<float>(y, d, x, n); }}}};
  for (const Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detect_isa())) continue;
    out.push_back({isa_name(isa), *simd::unary_loops(isa)});
  }
  return out;
}

TEST(Gelu, F32LoopsMatchDoubleReferenceAndScalarCdf) {
  // The F32 GELU loops (odd length: a partial last vector) against the erf GELU in double,
  // relative 1e-6 (both tails), and against the scalar normal_cdf<float> they vectorise, to a few
  // ulps.
  std::vector<float> x, dy;
  for (double v = -13; v < 9; v += 7.3e-4) {
    x.push_back(static_cast<float>(v));
    dy.push_back(static_cast<float>(1.0 + 0.25 * std::sin(v)));
  }
  const int64_t n = static_cast<int64_t>(x.size());
  ASSERT_NE(n % 16, 0);
  for (const Loops& loops : all_loops()) {
    SCOPED_TRACE(loops.name);
    std::vector<float> y(n), dx(n);
    loops.f.gelu_forward(y.data(), x.data(), n);
    loops.f.gelu_backward(dx.data(), dy.data(), x.data(), n);
    double worst_y = 0, worst_dx = 0, worst_scalar = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[i], cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
      const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
      const double want_y = v * cdf, want_dx = dy[i] * (cdf + v * pdf);
      if (want_y != 0) worst_y = std::max(worst_y, std::abs(y[i] - want_y) / std::abs(want_y));
      // Relative to the size of the terms: cdf + x pdf cancels at x = -0.75 (GELU's minimum).
      const double dx_scale = std::abs(dy[i]) * (cdf + std::abs(v) * pdf);
      if (dx_scale != 0) worst_dx = std::max(worst_dx, std::abs(dx[i] - want_dx) / dx_scale);
      const float scalar = x[i] * normal_cdf(x[i]);
      if (scalar != 0)
        worst_scalar = std::max(worst_scalar, double(std::abs(y[i] - scalar) / std::abs(scalar)));
    }
    EXPECT_LT(worst_y, 1e-6);
    EXPECT_LT(worst_dx, 1e-6);
    EXPECT_LT(worst_scalar, 4e-7);
  }
}

TEST(Gelu, F32SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.f, -1000.f, 1000.f, inf, std::nanf("")};
  for (const Loops& loops : all_loops()) {
    SCOPED_TRACE(loops.name);
    std::vector<float> y(x.size()), dx(x.size()), dy(x.size(), 1.f);
    loops.f.gelu_forward(y.data(), x.data(), 5);
    loops.f.gelu_backward(dx.data(), dy.data(), x.data(), 5);
    EXPECT_EQ(y[0], 0.f);
    EXPECT_EQ(y[1], 0.f);
    EXPECT_EQ(y[2], 1000.f);
    EXPECT_EQ(y[3], inf);
    EXPECT_TRUE(std::isnan(y[4]));
    EXPECT_EQ(dx[0], 0.5f);
    EXPECT_EQ(dx[1], 0.f);
    EXPECT_EQ(dx[2], 1.f);
    EXPECT_TRUE(std::isnan(dx[4]));
  }
}

TEST(Relu, F32LoopsMatchDefinition) {
  // The F32 ReLU loops (odd length: a partial last vector): exact, with NaN passed through
  // forward and blocked backward, -0 kept.
  std::vector<float> x = {-0.0f, 0.0f, std::nanf(""), -1e-30f, 1e-30f};
  for (int i = 0; i < 40; ++i) x.push_back(static_cast<float>(i % 7) - 3.5f);
  const int64_t n = static_cast<int64_t>(x.size());
  ASSERT_NE(n % 16, 0);
  for (const Loops& loops : all_loops()) {
    SCOPED_TRACE(loops.name);
    std::vector<float> y(n), dy(n), dx(n);
    for (int64_t i = 0; i < n; ++i) dy[i] = 0.5f + static_cast<float>(i);
    loops.f.relu_forward(y.data(), x.data(), n);
    loops.f.relu_backward(dx.data(), dy.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      if (std::isnan(x[i])) {
        EXPECT_TRUE(std::isnan(y[i]));
      } else {
        EXPECT_EQ(y[i], x[i] < 0 ? 0.0f : x[i]) << i;
        EXPECT_EQ(std::signbit(y[i]), x[i] < 0 ? false : std::signbit(x[i])) << i;
      }
      EXPECT_EQ(dx[i], y[i] > 0 ? dy[i] : 0.0f) << i;
    }
  }
}

TEST(Gelu, LargeArraysSplitOverThreadsMatchOneCall) {
  // unary.cpp splits big arrays into chunks over the threads; the result equals the ISA loop
  // over the whole array (or the scalar loop on a CPU without vectors) bit for bit.
  const int64_t n = (1 << 17) + 37;
  std::vector<float> x(n), y(n), want(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::sin(0.001 * double(i)) * 6.0);
  unary_forward<float>(UnaryOp::Gelu, y.data(), x.data(), n, 0);
  if (const simd::UnaryLoops* l = simd::unary_loops(active_isa())) {
    l->gelu_forward(want.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], want[i]) << i;
  } else {
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], x[i] * normal_cdf(x[i]), 1e-6 * (1 + std::abs(x[i])));
  }
}

TEST(MathKernel, SwitchSelectsLibm) {
  const MathKernel prev = math_kernel();
  set_math_kernel(MathKernel::Libm);
  EXPECT_EQ(math_kernel(), MathKernel::Libm);
  float y = 0;
  const float x = 0.3f;
  unary_forward<float>(UnaryOp::Exp, &y, &x, 1, 0);
  EXPECT_EQ(y, std::exp(x));
  set_math_kernel(prev);
}

TEST(Gelu, ForwardDerivativeEqualsForwardAndBackward) {
  // The training forward's y and d: y is the plain forward's exactly, and dy * d is the
  // backward's, bit for bit on the F32 vector loops (each ISA the CPU has, by the avx2: / scalar:
  // reruns) and within 8 ulps of the terms on the scalar loops (where the compiler may fuse the
  // multiply-adds of the two loops differently); both math kernels, F32 and F64, vector tails and
  // a threaded size; and d is GELU's derivative.
  const MathKernel prev = math_kernel();
  for (const MathKernel mk : {MathKernel::Fast, MathKernel::Libm}) {
    set_math_kernel(mk);
    for (const int64_t n : {int64_t(1), int64_t(7), int64_t(8), int64_t(17), int64_t(1000),
                            (int64_t(1) << 16) + 5}) {
      const auto check = [&]<class T>() {
        const bool exact = std::is_same_v<T, float> && mk == MathKernel::Fast &&
                           static_cast<int>(active_isa()) >= static_cast<int>(Isa::Avx2);
        const double eps = std::numeric_limits<T>::epsilon();
        std::vector<T> x(n), dy(n), y(n), d(n), y0(n), dx0(n);
        for (int64_t i = 0; i < n; ++i) {
          x[i] = static_cast<T>(std::sin(0.37 * double(i) + 0.1) * 7.0);
          dy[i] = static_cast<T>(std::cos(0.11 * double(i)));
        }
        gelu_forward_derivative<T>(y.data(), d.data(), x.data(), n);
        unary_forward<T>(UnaryOp::Gelu, y0.data(), x.data(), n, 0);
        unary_backward<T>(UnaryOp::Gelu, dx0.data(), dy.data(), x.data(), n, 0);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(y[i], y0[i]) << "y, n=" << n << " i=" << i;
          if (exact) {
            ASSERT_EQ(dy[i] * d[i], dx0[i]) << "dx, n=" << n << " i=" << i;
          } else {
            ASSERT_NEAR(double(dy[i] * d[i]), double(dx0[i]), 8 * eps * std::abs(double(dy[i])))
                << "dx, n=" << n << " x=" << x[i] << " bytes " << sizeof(T);
          }
          const double xv = double(x[i]);
          const double want = 0.5 * std::erfc(-xv / std::sqrt(2.0)) +
                              xv * std::exp(-0.5 * xv * xv) / std::sqrt(2.0 * M_PI);
          ASSERT_NEAR(double(d[i]), want, 1e-5) << "d, x=" << xv;
        }
      };
      check.template operator()<float>();
      check.template operator()<double>();
    }
  }
  set_math_kernel(prev);
}
