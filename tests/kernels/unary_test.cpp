// The vectorisable exp and normal CDF (kernels/unary.hpp) against libm: error in ulps over the
// whole normal range, the special values, and the documented flush-to-zero cutoffs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "focus/kernels/unary.hpp"

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
  EXPECT_LT(worst, 3e-7);  // a few float ulps, in both tails
  EXPECT_EQ(normal_cdf(std::numeric_limits<float>::infinity()), 1.f);
  EXPECT_EQ(normal_cdf(-std::numeric_limits<float>::infinity()), 0.f);
  EXPECT_TRUE(std::isnan(normal_cdf(std::nanf(""))));
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
