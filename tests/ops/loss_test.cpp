// Losses: cross_entropy by hand on a 2x3 example, label smoothing and ignored rows against the
// torch formula written out, stability on logits near 1e4, bce_with_logits and mse against naive
// formulas, gradients in F64, errors naming the shapes and values involved.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/ops/loss.hpp"
#include "ops/math_testing.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::fast_and_libm;
using focus::testing::gradcheck;
using focus::testing::rand_input;
using focus::testing::values;
using Inputs = std::vector<Tensor>;

namespace {

Tensor labels(const std::vector<int64_t>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

// torch.nn.CrossEntropyLoss(label_smoothing=eps, ignore_index=ignore) written out in double:
// per kept row (1 - eps) * -logp[t] + eps * mean_c(-logp[c]); mean over kept rows.
double naive_ce(const Tensor& logits, const std::vector<int64_t>& t, double eps, int64_t ignore) {
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  const auto x = values(logits);
  double total = 0;
  int kept = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == ignore) continue;
    double m = -INFINITY, z = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, x[n * C + c]);
    for (int64_t c = 0; c < C; ++c) z += std::exp(x[n * C + c] - m);
    const auto nlogp = [&](int64_t c) { return -(x[n * C + c] - m - std::log(z)); };
    double smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth += nlogp(c) / double(C);
    total += (1 - eps) * nlogp(t[n]) + eps * smooth;
    ++kept;
  }
  return total / kept;
}

}  // namespace

TEST(CrossEntropy, TwoByThreeByHand) {
  // Row 0: logits (1, 2, 3), target 2: log(e + e^2 + e^3) - 3 = 0.40760596...
  // Row 1: logits (1, 0, -1), target 0: log(e + 1 + e^-1) - 1 = 0.40760596... (same shape)
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 1, 0, -1}, {2, 3});
  const double row = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3;
  EXPECT_NEAR(row, 0.4076059644443806, 1e-15);
  EXPECT_NEAR(cross_entropy(x, labels({2, 0})).item(), row, 1e-15);
  // Target 1 in row 1: log(e + 1 + e^-1) - 0 = 1.4076059644...
  EXPECT_NEAR(cross_entropy(x, labels({2, 1})).item(), (row + row + 1) / 2, 1e-15);
  EXPECT_EQ(cross_entropy(x, labels({2, 0})).shape(), Shape{});
  EXPECT_EQ(cross_entropy(x.to(DType::F32), labels({2, 0})).dtype(), DType::F32);
}

TEST(CrossEntropy, LabelSmoothingAndIgnoredRows) {
  Rng rng(51);
  const Tensor x = Tensor::randn({6, 5}, rng, DType::F64, 2.0);  // (N, C)
  const std::vector<int64_t> t{3, -100, 0, 4, -100, 1}, t2{3, 7, 0, 4, 7, 1};
  for (double eps : {0.0, 0.1, 0.5, 1.0}) {
    EXPECT_NEAR(cross_entropy(x, labels(t), eps).item(), naive_ce(x, t, eps, -100), 1e-14) << eps;
    EXPECT_NEAR(cross_entropy(x, labels(t2), eps, 7).item(), naive_ce(x, t2, eps, 7), 1e-14);
  }
  // Every row ignored: 0 / 0, NaN as torch; the gradient is zero.
  Tensor xa = Tensor::randn({2, 3}, rng, DType::F64);
  xa.requires_grad_(true);
  const Tensor l = cross_entropy(xa, labels({-100, -100}));
  EXPECT_TRUE(std::isnan(l.item()));
  l.backward();
  for (double g : values(xa.grad())) EXPECT_EQ(g, 0.0);
}

TEST(CrossEntropy, StableOnLargeLogitsAndFastMatchesLibm) {
  // Logits near 1e4 (F32): finite and equal to the loss of the offsets alone.
  Rng rng(52);
  std::vector<float> big, off;
  for (int i = 0; i < 4 * 10; ++i) {
    off.push_back(static_cast<float>(i * 7 % 13 - 6) * 0.25f);
    big.push_back(1e4f + off.back());
  }
  const std::vector<int64_t> t{1, 9, 4, 0};
  const double want = naive_ce(Tensor::from_vector(off, {4, 10}).to(DType::F64), t, 0.1, -100);
  const double got = cross_entropy(Tensor::from_vector(big, {4, 10}), labels(t), 0.1).item();
  EXPECT_TRUE(std::isfinite(got));
  EXPECT_NEAR(got, want, 2e-6 * want);
  Tensor xb = Tensor::from_vector(big, {4, 10});
  xb.requires_grad_(true);
  cross_entropy(xb, labels(t)).backward();
  for (double g : values(xb.grad())) EXPECT_TRUE(std::isfinite(g));
  // A large batch (threaded rows): the fast exp against libm.
  const Tensor x = Tensor::randn({512, 100}, rng, DType::F32, 3.0);  // (N, C)
  std::vector<int64_t> tl(512);
  for (int64_t n = 0; n < 512; ++n) tl[n] = (n * 31) % 100;
  const auto [fast, ref] = fast_and_libm([&] { return cross_entropy(x, labels(tl), 0.05); });
  EXPECT_NEAR(fast.item(), ref.item(), 1e-6 * ref.item());
  EXPECT_NEAR(fast.item(), naive_ce(x.to(DType::F64), tl, 0.05, -100), 1e-5 * ref.item());
}

TEST(CrossEntropy, Gradients) {
  // gradcheck seeds the backward with a random scalar, so the upstream scale is exercised too.
  Rng rng(53);
  for (double eps : {0.0, 0.2}) {
    EXPECT_TRUE(gradcheck(
        [&](const Inputs& in) {
          return cross_entropy(in[0], labels({1, 0, 3}), eps);
        },
        {rand_input({3, 4}, rng, -2, 2)}))
        << eps;
    EXPECT_TRUE(gradcheck(
        [&](const Inputs& in) {
          return cross_entropy(in[0], labels({2, -1, 0, -1, 1}), eps, -1);
        },
        {rand_input({5, 3}, rng, -2, 2)}))
        << "ignored rows, eps " << eps;
  }
}

TEST(BceWithLogits, ValuesStabilityAndGradients) {
  Rng rng(54);
  const Tensor x = Tensor::randn({4, 5}, rng, DType::F64, 3.0),
               y = Tensor::rand({4, 5}, rng, DType::F64);
  const auto xv = values(x), yv = values(y);
  double want = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double p = 1 / (1 + std::exp(-xv[i]));
    want -= yv[i] * std::log(p) + (1 - yv[i]) * std::log(1 - p);
  }
  EXPECT_NEAR(bce_with_logits(x, y).item(), want / 20, 1e-13);
  // |x| = 100: log(sigmoid) would be log(0) done naively; the stable form stays exact.
  const Tensor xs = Tensor::from_vector(std::vector<float>{100, -100}, {2});
  const Tensor ys = Tensor::from_vector(std::vector<float>{0, 1}, {2});
  EXPECT_NEAR(bce_with_logits(xs, ys).item(), 100.0, 1e-4);
  EXPECT_TRUE(gradcheck([](const Inputs& in) { return bce_with_logits(in[0], in[1]); },
                        {rand_input({3, 4}, rng, -3, 3), rand_input({3, 4}, rng, 0, 1)}));
}

TEST(MseLoss, ValuesAndGradients) {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  const Tensor y = Tensor::from_vector(std::vector<double>{1.5, 2, 1, 5}, {2, 2});
  EXPECT_NEAR(mse_loss(x, y).item(), (0.25 + 0 + 4 + 1) / 4, 1e-15);
  Rng rng(55);
  EXPECT_TRUE(gradcheck([](const Inputs& in) { return mse_loss(in[0], in[1]); },
                        {rand_input({2, 3, 4}, rng), rand_input({2, 3, 4}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& in) { return mse_loss(in[0], in[1]); },
                        {rand_input({5}, rng), rand_input({5}, rng, -1, 1, false)}));
}

TEST(LossErrors, TargetsAndShapes) {
  const Tensor x = Tensor::zeros({3, 4});
  expect_error<DTypeError>([&] { cross_entropy(x, Tensor::zeros({3})); }, "F32");
  expect_error<ShapeError>([&] { cross_entropy(x, Tensor::zeros({3, 1}, DType::I64)); }, "(3, 1)");
  expect_error<ShapeError>([&] { cross_entropy(x, labels({0, 1})); }, "(2,)");
  expect_error<ShapeError>([&] { cross_entropy(Tensor::zeros({4}), labels({0})); }, "(4,)");
  expect_error<ValueError>([&] { cross_entropy(x, labels({0, 4, 1})); }, "target 4 of row 1");
  expect_error<ValueError>([&] { cross_entropy(x, labels({0, -2, 1})); }, "target -2");
  expect_error<ValueError>([&] { cross_entropy(x, labels({0, 1, 2}), 1.5); }, "1.5");
  expect_error<ShapeError>([&] { bce_with_logits(x, Tensor::zeros({4, 3})); }, "(4, 3)");
  expect_error<ShapeError>([&] { mse_loss(x, Tensor::zeros({3})); }, "(3,)");
  expect_error<DTypeError>([&] { mse_loss(x, Tensor::zeros({3, 4}, DType::F64)); }, "F64");
}
