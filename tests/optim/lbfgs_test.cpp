// L-BFGS (optim/lbfgs.hpp): the exact minimiser of a badly conditioned quadratic, Rosenbrock's
// valley from its classic start, an L2-regularised logistic regression whose optimum is checked
// by central differences of an independently written loss (its gradient must vanish there), the
// stop reasons, and the option errors.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/optim/lbfgs.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"
#include "support/expect_error.hpp"

using namespace focus;

TEST(Lbfgs, FindsTheMinimumOfAnIllConditionedQuadratic) {
  // f = sum_i a_i (x_i - c_i)^2 / 2 with a_i from 1 to 1e3 (L-BFGS(10) with a backtracking line
  // search needs a few hundred iterations here, as scipy's L-BFGS-B does).
  const int n = 20;
  std::vector<double> a(n), c(n);
  for (int i = 0; i < n; ++i) a[size_t(i)] = std::pow(10.0, 3.0 * i / (n - 1)), c[size_t(i)] = std::sin(i + 1.0);
  auto f = [&](const std::vector<double>& x, std::vector<double>& g) {
    double v = 0;
    for (int i = 0; i < n; ++i) {
      const double d = x[size_t(i)] - c[size_t(i)];
      v += 0.5 * a[size_t(i)] * d * d;
      g[size_t(i)] = a[size_t(i)] * d;
    }
    return v;
  };
  std::vector<double> x(n, 0.0);
  LbfgsOptions o;
  o.tol_grad = 1e-10;
  o.tol_value = 0;
  o.max_iter = 2000;
  const LbfgsResult r = lbfgs_minimize(f, x, o);
  EXPECT_EQ(r.stop, "gradient");
  for (int i = 0; i < n; ++i) EXPECT_NEAR(x[size_t(i)], c[size_t(i)], 1e-9) << i;
  EXPECT_LT(r.iterations, 1000);
  EXPECT_GE(r.evaluations, r.iterations + 1);
}

TEST(Lbfgs, FollowsRosenbrocksValley) {
  auto f = [](const std::vector<double>& x, std::vector<double>& g) {
    const double a = 1 - x[0], b = x[1] - x[0] * x[0];
    g[0] = -2 * a - 400 * x[0] * b;
    g[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  std::vector<double> x = {-1.2, 1.0};
  LbfgsOptions o;
  o.tol_grad = 1e-9;
  o.tol_value = 0;
  const LbfgsResult r = lbfgs_minimize(f, x, o);
  EXPECT_EQ(r.stop, "gradient");
  EXPECT_NEAR(x[0], 1.0, 1e-6);
  EXPECT_NEAR(x[1], 1.0, 1e-6);
  EXPECT_LT(r.value, 1e-12);
}

TEST(Lbfgs, RegularisedLogisticRegressionGradientVanishesAtTheResult) {
  // 60 points in 5 dimensions, labels from a noisy linear rule; loss = mean log(1 + e^{-y w.x})
  // + |w|^2 / (2 C n).
  Rng rng(7);
  const int n = 60, d = 5;
  const double C = 3;
  std::vector<double> X(static_cast<size_t>(n * d)), y(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < d; ++j) X[size_t(i * d + j)] = rng.normal(), s += (j + 1) * X[size_t(i * d + j)];
    y[size_t(i)] = s + 2 * rng.normal() > 0 ? 1 : -1;
  }
  auto loss = [&](const std::vector<double>& w) {
    double v = 0;
    for (int i = 0; i < n; ++i) {
      double m = 0;
      for (int j = 0; j < d; ++j) m += w[size_t(j)] * X[size_t(i * d + j)];
      v += std::log1p(std::exp(-y[size_t(i)] * m));
    }
    double r = 0;
    for (double wj : w) r += wj * wj;
    return v / n + r / (2 * C * n);
  };
  auto f = [&](const std::vector<double>& w, std::vector<double>& g) {
    for (int j = 0; j < d; ++j) g[size_t(j)] = w[size_t(j)] / (C * n);
    for (int i = 0; i < n; ++i) {
      double m = 0;
      for (int j = 0; j < d; ++j) m += w[size_t(j)] * X[size_t(i * d + j)];
      const double s = -y[size_t(i)] / (1 + std::exp(y[size_t(i)] * m)) / n;
      for (int j = 0; j < d; ++j) g[size_t(j)] += s * X[size_t(i * d + j)];
    }
    return loss(w);
  };
  std::vector<double> w(d, 0.0);
  LbfgsOptions o;
  o.tol_grad = 1e-10;
  o.tol_value = 0;
  const LbfgsResult r = lbfgs_minimize(f, w, o);
  EXPECT_EQ(r.stop, "gradient");
  for (int j = 0; j < d; ++j) {  // central differences of the independent loss: ~0
    std::vector<double> p = w, m = w;
    p[size_t(j)] += 1e-5, m[size_t(j)] -= 1e-5;
    EXPECT_NEAR((loss(p) - loss(m)) / 2e-5, 0.0, 1e-7) << j;
  }
  EXPECT_NEAR(r.value, loss(w), 1e-15);
}

TEST(Lbfgs, StopsOnTheIterationCapAndRejectsBadOptions) {
  auto f = [](const std::vector<double>& x, std::vector<double>& g) {
    g[0] = 2 * (x[0] - 3);
    return (x[0] - 3) * (x[0] - 3);
  };
  std::vector<double> x = {0};
  LbfgsOptions o;
  o.max_iter = 0;
  EXPECT_EQ(lbfgs_minimize(f, x, o).stop, "max_iter");
  EXPECT_EQ(x[0], 0);
  o.max_iter = 100;
  EXPECT_EQ(lbfgs_minimize(f, x, o).stop, "gradient");
  EXPECT_NEAR(x[0], 3, 1e-6);
  o.memory = 0;
  focus::testing::expect_error<ValueError>([&] { lbfgs_minimize(f, x, o); }, {"memory"});
  auto bad = [](const std::vector<double>&, std::vector<double>& g) {
    g[0] = 0;
    return std::nan("");
  };
  focus::testing::expect_error<ValueError>([&] { lbfgs_minimize(bad, x, {}); }, {"start"});
}
