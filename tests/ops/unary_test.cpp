// Pointwise functions: values against libm in F64 and F32 (fast exp / normal CDF paths included),
// gradients by finite differences in F64 (relu / abs inputs kept away from 0), errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "focus/kernels/unary.hpp"
#include "focus/ops/unary.hpp"
#include "focus/ops/view.hpp"
#include "ops/math_testing.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::away_from_zero;
using focus::testing::fast_and_libm;
using focus::testing::gradcheck;
using focus::testing::rand_input;
using focus::testing::values;
using Inputs = std::vector<Tensor>;

namespace {

// erfc, not 1 + erf: the latter cancels to 0 for x < -8 even in double.
double gelu_ref(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }
double gelu_tanh_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

struct Case {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;  // input range
};

std::vector<Case> cases() {
  return {
      {"exp", [](const Tensor& a) { return exp(a); }, [](double x) { return std::exp(x); }, -20,
       20},
      {"log", [](const Tensor& a) { return log(a); }, [](double x) { return std::log(x); }, 0.01,
       50},
      {"sqrt", [](const Tensor& a) { return sqrt(a); }, [](double x) { return std::sqrt(x); }, 0,
       9},
      {"tanh", [](const Tensor& a) { return tanh(a); }, [](double x) { return std::tanh(x); }, -5,
       5},
      {"sigmoid", [](const Tensor& a) { return sigmoid(a); },
       [](double x) { return 1 / (1 + std::exp(-x)); }, -30, 30},
      {"relu", [](const Tensor& a) { return relu(a); }, [](double x) { return x > 0 ? x : 0; }, -2,
       2},
      {"gelu", [](const Tensor& a) { return gelu(a); }, gelu_ref, -8, 8},
      {"gelu_tanh", [](const Tensor& a) { return gelu(a, true); }, gelu_tanh_ref, -8, 8},
      {"square", [](const Tensor& a) { return square(a); }, [](double x) { return x * x; }, -3, 3},
      {"pow3", [](const Tensor& a) { return pow(a, 3.0); }, [](double x) { return x * x * x; }, -2,
       2},
      {"pow-1.5", [](const Tensor& a) { return pow(a, -1.5); },
       [](double x) { return std::pow(x, -1.5); }, 0.1, 4},
      {"abs", [](const Tensor& a) { return abs(a); }, [](double x) { return std::fabs(x); }, -2, 2},
  };
}

}  // namespace

TEST(Unary, ValuesMatchLibm) {
  Rng rng(11);
  for (const Case& c : cases()) {
    for (DType dt : {DType::F64, DType::F32}) {
      Tensor x = Tensor::rand({5000}, rng, dt, c.lo, c.hi);  // (5000,)
      const auto xs = values(x), ys = values(c.op(x));
      const double tol = dt == DType::F64 ? 1e-14 : 4e-7;
      for (size_t i = 0; i < xs.size(); ++i) {
        const double want = c.ref(xs[i]);
        ASSERT_NEAR(ys[i], want, tol * std::max(1.0, std::abs(want)))
            << c.name << " " << dtype_name(dt) << " at x = " << xs[i];
      }
    }
  }
}

TEST(Unary, GeluTailsRelativeAccuracyF32) {
  // gelu(x) for x << 0 is tiny; the fast normal CDF must keep its relative accuracy there.
  std::vector<float> xs;
  for (float x = -12.f; x <= 6.f; x += 0.01f) xs.push_back(x);
  const Tensor y = gelu(Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())}));
  const auto ys = values(y);
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = gelu_ref(xs[i]);
    EXPECT_NEAR(ys[i], want, 1e-6 * std::abs(want) + 1e-37) << "x = " << xs[i];
  }
}

TEST(Unary, LargeArraysInParallelMatchFastAndLibm) {
  Rng rng(12);
  const Tensor x = Tensor::randn({300, 400}, rng, DType::F32, 3.0);  // (300, 400): parallel path
  for (auto op :
       {+[](const Tensor& a) { return gelu(a); }, +[](const Tensor& a) { return sigmoid(a); },
        +[](const Tensor& a) { return exp(a); }}) {
    const auto [fast, ref] = fast_and_libm([&] { return op(x); });
    const auto a = values(fast), b = values(ref);
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_NEAR(a[i], b[i], 3e-7 * std::max(1.0, std::abs(b[i])));
  }
}

TEST(Unary, SaturatesWithoutNaN) {
  const Tensor x = Tensor::from_vector(std::vector<float>{-1000, -100, 100, 1000}, {4});
  EXPECT_EQ(values(sigmoid(x)), (std::vector<double>{0, 0, 1, 1}));
  EXPECT_EQ(values(gelu(x)), (std::vector<double>{0, 0, 100, 1000}));
  EXPECT_EQ(values(gelu(x, true)), (std::vector<double>{0, 0, 100, 1000}));
  const auto e = values(exp(x));
  EXPECT_EQ(e[0], 0.0);
  EXPECT_TRUE(std::isinf(e[3]));
  EXPECT_TRUE(std::isnan(values(exp(Tensor::from_vector(std::vector<float>{NAN}, {1})))[0]));
}

TEST(Unary, Gradients) {
  Rng rng(13);
  for (const Case& c : cases()) {
    const bool kink = std::string(c.name) == "relu" || std::string(c.name) == "abs";
    const bool positive = c.lo > 0 || std::string(c.name) == "sqrt";
    Tensor x = kink       ? away_from_zero({3, 4}, rng)
               : positive ? rand_input({3, 4}, rng, 0.5, 2.0)
                          : rand_input({3, 4}, rng, -3.0, 3.0);
    EXPECT_TRUE(gradcheck([&](const Inputs& in) { return c.op(in[0]); }, {x})) << c.name;
  }
  // pow(x, 0) is constant: zero gradient (not 0 * x^-1, which is NaN at 0).
  Tensor z = Tensor::zeros({2}, DType::F64);
  z.requires_grad_(true);
  pow(z, 0.0).backward(Tensor::ones({2}, DType::F64));
  EXPECT_EQ(values(z.grad()), (std::vector<double>{0, 0}));
}

TEST(Unary, GradientOfStridedInput) {
  Rng rng(14);
  EXPECT_TRUE(gradcheck([](const Inputs& in) { return gelu(transpose(in[0], 0, 1)); },
                        {rand_input({3, 5}, rng, -2, 2)}));
  EXPECT_TRUE(gradcheck([](const Inputs& in) { return sigmoid(slice(in[0], 1, 0, 5, 2)); },
                        {rand_input({2, 5}, rng, -2, 2)}));
}

TEST(Unary, Errors) {
  EXPECT_THROW(exp(Tensor::zeros({2}, DType::I64)), DTypeError);
  EXPECT_THROW(relu(Tensor()), ValueError);
}
