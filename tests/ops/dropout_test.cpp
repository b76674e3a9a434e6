// dropout: kept fraction and scaling, the mask reproduced from (seed, offset) independently of
// the thread count, the backward reusing the forward's mask, the Rng stream advancing, identity
// in eval mode and for p = 0, and the p range check.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/kernels/cpu.hpp"
#include "focus/ops/dropout.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::rand_input;

using Inputs = std::vector<Tensor>;

TEST(Dropout, KeptFractionAndScale) {
  const int64_t n = 1000000;
  const Tensor x = Tensor::ones({1000, 1000});
  for (const double p : {0.1, 0.5, 0.9}) {
    Rng rng(51);
    const auto y = dropout(x, p, true, rng).to_vector<float>();
    int64_t kept = 0;
    for (const float v : y) {
      if (v != 0.f) {
        ++kept;
        ASSERT_FLOAT_EQ(v, static_cast<float>(1.0 / (1.0 - p)));
      }
    }
    // The kept count is Binomial(n, 1-p): 6 standard deviations is at most 3e-3 of n.
    EXPECT_NEAR(double(kept) / n, 1.0 - p, 6 * std::sqrt(p * (1 - p) / n)) << "p=" << p;
  }
}

TEST(Dropout, SameMaskForOneAndTwoThreads) {
  const Tensor x = Tensor::ones({300001});  // odd size, well above the threading threshold
  const int saved = num_threads();
  Tensor y[2];
  for (int t = 0; t < 2; ++t) {
    set_num_threads(t + 1);
    Rng rng;
    rng.set_state(99, 12345);
    y[t] = dropout(x, 0.3, true, rng);
  }
  set_num_threads(saved);
  EXPECT_EQ(y[0].to_vector<float>(), y[1].to_vector<float>());
}

TEST(Dropout, StreamAdvancesBetweenCalls) {
  Rng rng(52);
  const Tensor x = Tensor::ones({1001});
  const uint64_t before = rng.offset();
  const Tensor a = dropout(x, 0.5, true, rng), b = dropout(x, 0.5, true, rng);
  EXPECT_EQ(rng.offset(), before + 2 * ((1001 + 7) / 8));  // 8 elements a counter
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Dropout, BackwardReusesTheForwardMask) {
  // y = x * m / (1-p) with x > 0, so the forward's mask is y != 0; d sum(y) / dx must be
  // m / (1-p) exactly there.
  Rng data(53);
  Tensor x = Tensor::rand({7, 129}, data, DType::F32, 0.5, 1.5);
  x.requires_grad_(true);
  Rng rng(54);
  const Tensor y = dropout(x, 0.4, true, rng);
  y.backward(Tensor::ones(y.shape()));
  const auto yv = y.to_vector<float>(), gv = x.grad().to_vector<float>();
  const float scale = static_cast<float>(1.0 / 0.6);
  for (size_t i = 0; i < yv.size(); ++i) ASSERT_EQ(gv[i], yv[i] != 0.f ? scale : 0.f) << i;
}

TEST(Dropout, Gradients) {
  // A fresh Rng with a fixed seed in every call: the same mask for each finite difference.
  Rng rng(55);
  EXPECT_TRUE(gradcheck(
      [](const Inputs& x) {
        Rng r(7);
        return dropout(mul(x[0], x[0]), 0.35, true, r);
      },
      {rand_input({5, 9}, rng)}));
}

TEST(Dropout, IdentityInEvalModeAndForZeroP) {
  Rng data(56);
  Tensor x = Tensor::randn({4, 5}, data);
  x.requires_grad_(true);
  Rng rng(57);
  const Tensor e = dropout(x, 0.5, false, rng), z = dropout(x, 0.0, true, rng);
  EXPECT_EQ(e.impl(), x.impl());  // the same tensor: no copy
  EXPECT_EQ(z.impl(), x.impl());
  EXPECT_EQ(e.grad_fn(), nullptr);  // no graph node added
  EXPECT_EQ(rng.offset(), 0u);      // no counters used
}

TEST(Dropout, Errors) {
  Rng rng(58);
  const Tensor x = Tensor::ones({3});
  EXPECT_THROW(dropout(x, 1.0, true, rng), ValueError);
  EXPECT_THROW(dropout(x, -0.1, true, rng), ValueError);
  EXPECT_THROW(dropout(x, std::nan(""), true, rng), ValueError);
  EXPECT_THROW(dropout(x, 1.5, false, rng), ValueError);  // checked in eval mode too
  EXPECT_THROW(dropout(Tensor::zeros({3}, DType::I64), 0.5, true, rng), DTypeError);
}
