// retain_grad: gradients of intermediate tensors, checked against the analytic values (also for
// an intermediate used twice); a registration whose tensor died catches nothing.
#include <gtest/gtest.h>

#include "focus/autograd/retain.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"

namespace focus {
namespace {

using testing::max_abs_diff;

TEST(RetainGrad, IntermediateGradientEqualsAnalytic) {
  Rng rng(1);
  Tensor x = Tensor::randn({3, 4}, rng, DType::F64).requires_grad_();
  const Tensor w = Tensor::randn({3, 4}, rng, DType::F64);
  const Tensor t = mul(x, x);  // t = x^2; loss = sum(w * t) -> dloss/dt = w, dloss/dx = 2 w x
  retain_grad(t);
  sum(mul(w, t)).backward();
  ASSERT_TRUE(t.grad().defined());
  EXPECT_LT(max_abs_diff(t.grad(), w), 1e-15);
  EXPECT_LT(max_abs_diff(x.grad(), mul(mul(w, x), 2.0)), 1e-15);

  // An intermediate used twice: its gradient is the sum over both uses.
  const Tensor u = mul(x, 3.0);
  retain_grad(u);
  add(sum(mul(w, u)), sum(u)).backward();
  EXPECT_LT(max_abs_diff(u.grad(), add(w, 1.0)), 1e-15);
}

TEST(RetainGrad, UnusedRegistrationDoesNotLeakIntoOtherGraphs) {
  Rng rng(2);
  Tensor x = Tensor::randn({5}, rng, DType::F64).requires_grad_();
  {
    const Tensor dead = mul(x, 2.0);
    retain_grad(dead);
  }  // dies without a backward: its registration must not catch another node
  const Tensor y = mul(x, 2.0);
  sum(y).backward();
  EXPECT_FALSE(y.grad().defined());  // y itself was not registered
  EXPECT_THROW(retain_grad(Tensor::zeros({2})), StateError);  // no grad flows into it
}

}  // namespace
}  // namespace focus
