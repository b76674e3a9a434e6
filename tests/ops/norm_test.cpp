// layer_norm and batch_norm: rows / channels normalised (mean 0, variance 1), values against the
// formula in double, running statistics after one step against the hand formula, gradients of
// input, weight and bias in F64 (training and eval), errors.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/ops/elementwise.hpp"
#include "focus/ops/norm.hpp"
#include "focus/ops/view.hpp"
#include "ops/math_testing.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::gradcheck;
using focus::testing::rand_input;
using focus::testing::values;
using Inputs = std::vector<Tensor>;

namespace {

// Per-group mean and population variance of x viewed as (G, K) groups of K values, where group
// g holds the elements for which key(i) == g.
template <class Key>
void group_stats(const std::vector<double>& x, int64_t G, Key key, std::vector<double>& mean,
                 std::vector<double>& var) {
  mean.assign(G, 0);
  var.assign(G, 0);
  std::vector<double> cnt(G, 0);
  for (size_t i = 0; i < x.size(); ++i) {
    mean[key(i)] += x[i];
    cnt[key(i)] += 1;
  }
  for (int64_t g = 0; g < G; ++g) mean[g] /= cnt[g];
  for (size_t i = 0; i < x.size(); ++i) var[key(i)] += std::pow(x[i] - mean[key(i)], 2);
  for (int64_t g = 0; g < G; ++g) var[g] /= cnt[g];
}

}  // namespace

TEST(LayerNorm, RowsHaveMeanZeroVarianceOne) {
  Rng rng(41);
  for (DType dt : {DType::F64, DType::F32}) {
    const Tensor x = Tensor::randn({4, 6, 32}, rng, dt, 5.0);  // (B, L, C), shifted below
    const Tensor y = layer_norm(add(x, 3.0), Tensor(), Tensor());
    std::vector<double> m, v;
    group_stats(
        values(y), 24, [](size_t i) { return int64_t(i / 32); }, m, v);
    const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
    for (int64_t r = 0; r < 24; ++r) {
      EXPECT_NEAR(m[r], 0.0, tol);
      EXPECT_NEAR(v[r], 1.0, 2e-5);  // eps = 1e-5 makes it 1 - 1e-5 / 25 at most
    }
  }
}

TEST(LayerNorm, AffineMatchesFormula) {
  Rng rng(42);
  const int64_t R = 300, C = 96;  // parallel path
  const Tensor x = Tensor::randn({R, C}, rng, DType::F32);
  const Tensor w = Tensor::randn({C}, rng, DType::F32), b = Tensor::randn({C}, rng, DType::F32);
  const auto y = values(layer_norm(x, w, b, 1e-3));
  const auto xv = values(x), wv = values(w), bv = values(b);
  std::vector<double> m, v;
  group_stats(
      xv, R, [C](size_t i) { return int64_t(i) / C; }, m, v);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const double want = (xv[r * C + c] - m[r]) / std::sqrt(v[r] + 1e-3) * wv[c] + bv[c];
      ASSERT_NEAR(y[r * C + c], want, 1e-5 * std::max(1.0, std::abs(want)));
    }
}

TEST(LayerNorm, Gradients) {
  Rng rng(43);
  const auto ln = [](const Inputs& in) { return layer_norm(in[0], in[1], in[2]); };
  EXPECT_TRUE(
      gradcheck(ln, {rand_input({2, 3, 5}, rng), rand_input({5}, rng), rand_input({5}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& in) { return layer_norm(in[0], Tensor(), Tensor()); },
                        {rand_input({4, 6}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& in) { return layer_norm(in[0], in[1], Tensor(), 1e-2); },
                        {rand_input({3, 4}, rng), rand_input({4}, rng)}));
  // Strided input; weight and bias only (the input is a constant).
  const auto ln_t = [](const Inputs& in) {
    return layer_norm(transpose(in[0], 0, 1), in[1], in[2]);
  };
  EXPECT_TRUE(
      gradcheck(ln_t, {rand_input({5, 3}, rng), rand_input({5}, rng), rand_input({5}, rng)}));
  EXPECT_TRUE(gradcheck(
      ln, {rand_input({3, 4}, rng, -1, 1, false), rand_input({4}, rng), rand_input({4}, rng)}));
  // Large enough for the threaded backward (per-thread weight/bias partial sums).
  EXPECT_TRUE(gradcheck(ln, {rand_input({260, 64}, rng, -1, 1, false), rand_input({64}, rng),
                             rand_input({64}, rng)}));
}

// F32 accumulates the statistics in F32 and the weight/bias gradients in F32 blocks of rows, then
// in double: against the same inputs in F64, over many blocks, both threads, a shifted mean.
TEST(LayerNorm, F32MatchesF64OverManyRows) {
  Rng rng(47);
  const int64_t R = 1000, C = 192;  // 31 whole blocks of 32 rows and a partial one
  const Tensor x64 = add(Tensor::randn({R, C}, rng, DType::F64, 2.0), 3.0);
  const Tensor w64 = Tensor::randn({C}, rng, DType::F64), b64 = Tensor::randn({C}, rng, DType::F64);
  const Tensor g64 = Tensor::randn({R, C}, rng, DType::F64);
  std::vector<Tensor> out[2];  // y, dx, dw, db for F64, F32
  for (int k = 0; k < 2; ++k) {
    const DType dt = k == 0 ? DType::F64 : DType::F32;
    Tensor x = x64.to(dt), w = w64.to(dt), b = b64.to(dt);
    for (Tensor* t : {&x, &w, &b}) t->requires_grad_();
    const Tensor y = layer_norm(x, w, b);
    y.backward(g64.to(dt));
    out[k] = {y, x.grad(), w.grad(), b.grad()};
  }
  const char* names[] = {"y", "dx", "dw", "db"};
  for (int i = 0; i < 4; ++i)
    EXPECT_LT(focus::testing::max_rel_diff(out[1][i], out[0][i]), 2e-5) << names[i];
}

TEST(BatchNorm, TrainingNormalisesChannelsAndUpdatesRunningStats) {
  Rng rng(44);
  const int64_t N = 4, C = 3, H = 5, W = 6;
  const Tensor x = Tensor::randn({N, C, H, W}, rng, DType::F64, 2.0);
  Tensor rm = Tensor::from_vector(std::vector<double>{0.5, -1, 2}, {C});
  Tensor rv = Tensor::from_vector(std::vector<double>{1, 2, 0.5}, {C});
  const Tensor w = Tensor::from_vector(std::vector<double>{1.5, -0.5, 2}, {C});
  const Tensor b = Tensor::from_vector(std::vector<double>{0.1, 0.2, -0.3}, {C});
  const double mom = 0.3, eps = 1e-5;
  const auto y = values(batch_norm(x, rm, rv, w, b, true, mom, eps));
  const auto key = [=](size_t i) { return int64_t(i / (H * W)) % C; };
  std::vector<double> m, v;
  group_stats(values(x), C, key, m, v);
  const auto xv = values(x);
  for (size_t i = 0; i < xv.size(); ++i) {
    const int64_t c = key(i);
    ASSERT_NEAR(y[i], (xv[i] - m[c]) / std::sqrt(v[c] + eps) * values(w)[c] + values(b)[c], 1e-12);
  }
  const double M = N * H * W;
  const std::vector<double> rm0{0.5, -1, 2}, rv0{1, 2, 0.5};
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_NEAR(values(rm)[c], (1 - mom) * rm0[c] + mom * m[c], 1e-14);
    EXPECT_NEAR(values(rv)[c], (1 - mom) * rv0[c] + mom * v[c] * M / (M - 1), 1e-14);  // unbiased
  }
}

TEST(BatchNorm, EvalUsesRunningStats) {
  Rng rng(45);
  const Tensor x = Tensor::randn({5, 2}, rng, DType::F64);  // (N, C)
  Tensor rm = Tensor::from_vector(std::vector<double>{0.3, -0.2}, {2});
  Tensor rv = Tensor::from_vector(std::vector<double>{1.5, 0.25}, {2});
  const auto y = values(batch_norm(x, rm, rv, Tensor(), Tensor(), false));
  const auto xv = values(x);
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = i % 2;
    EXPECT_NEAR(y[i], (xv[i] - values(rm)[c]) / std::sqrt(values(rv)[c] + 1e-5), 1e-14);
  }
  EXPECT_EQ(values(rm)[0], 0.3);  // untouched in eval
  EXPECT_EQ(values(rv)[1], 0.25);
}

TEST(BatchNorm, LargeF32MatchesF64) {
  Rng rng(46);
  const Tensor x64 = Tensor::randn({16, 8, 14, 14}, rng, DType::F64, 3.0);  // (N, C, H, W)
  Tensor rm64 = Tensor::zeros({8}, DType::F64), rv64 = Tensor::ones({8}, DType::F64);
  Tensor rm32 = Tensor::zeros({8}), rv32 = Tensor::ones({8});
  const Tensor y64 = batch_norm(x64, rm64, rv64, Tensor(), Tensor(), true);
  const Tensor y32 = batch_norm(x64.to(DType::F32), rm32, rv32, Tensor(), Tensor(), true);
  EXPECT_LT(focus::testing::max_rel_diff(y32, y64), 2e-6);
  EXPECT_LT(focus::testing::max_rel_diff(rv32, rv64), 1e-6);
}

TEST(BatchNorm, Gradients) {
  Rng rng(47);
  for (bool training : {true, false}) {
    // The running statistics change on every training call; the output does not depend on them.
    Tensor rm = Tensor::from_vector(std::vector<double>{0.1, -0.2, 0.3}, {3});
    Tensor rv = Tensor::from_vector(std::vector<double>{0.9, 1.2, 0.7}, {3});
    const auto bn = [&](const Inputs& in) {
      return batch_norm(in[0], rm, rv, in[1], in[2], training, 0.1, 1e-5);
    };
    EXPECT_TRUE(
        gradcheck(bn, {rand_input({2, 3, 2, 3}, rng), rand_input({3}, rng), rand_input({3}, rng)}))
        << "training " << training;  // (N, C, H, W): dx, dweight, dbias
    EXPECT_TRUE(
        gradcheck(bn, {rand_input({4, 3}, rng), rand_input({3}, rng), rand_input({3}, rng)}))
        << "training " << training;  // (N, C)
    EXPECT_TRUE(gradcheck(
        [&](const Inputs& in) { return batch_norm(in[0], rm, rv, Tensor(), Tensor(), training); },
        {rand_input({3, 3, 4}, rng)}))
        << "training " << training;  // (N, C, L), no affine
  }
}

TEST(NormErrors, ShapesAndModes) {
  const Tensor x = Tensor::zeros({2, 3, 4});
  expect_error<ShapeError>([&] { layer_norm(x, Tensor::ones({3}), Tensor()); }, "(3,)");
  expect_error<ShapeError>([&] { layer_norm(x, Tensor(), Tensor::ones({4, 1})); }, "(2, 3, 4)");
  expect_error<DTypeError>([&] { layer_norm(x, Tensor::ones({4}, DType::F64), Tensor()); }, "F64");
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3}), none;
  expect_error<ShapeError>(
      [&] { batch_norm(Tensor::zeros({3}), rm, rv, Tensor(), Tensor(), true); }, "(3,)");
  expect_error<ShapeError>([&] { batch_norm(x, rm, rv, Tensor::ones({4}), Tensor(), true); },
                           "(4,)");
  expect_error<ValueError>([&] { batch_norm(x, none, none, Tensor(), Tensor(), false); },
                           "running_mean");
  expect_error<ValueError>(
      [&] {
        batch_norm(Tensor::zeros({1, 3}), rm, rv, Tensor(), Tensor(), true);
      },
      "(1, 3)");
  Tensor bad = Tensor::zeros({4});
  expect_error<ShapeError>([&] { batch_norm(x, bad, rv, Tensor(), Tensor(), true); },
                           "running_mean");
  // Training without running statistics is allowed (track_running_stats=False).
  EXPECT_EQ(batch_norm(x, none, none, Tensor(), Tensor(), true).shape(), x.shape());
}
