// Leaf-gradient sinks: inside a scope, backward leaves .grad alone and fills the sink; flush adds
// the sink into the leaves (creating .grad where there was none); scopes nest and restore.
#include <gtest/gtest.h>

#include "focus/autograd/grad_sink.hpp"
#include "focus/ops/ops.hpp"

using namespace focus;

TEST(GradSink, BackwardFillsTheSinkAndFlushAddsIntoLeaves) {
  Tensor w = Tensor::from_vector(std::vector<double>{1.0, 2.0, 3.0}, {3}).requires_grad_(true);
  Tensor x = Tensor::from_vector(std::vector<double>{4.0, 5.0, 6.0}, {3});
  LeafGradSink a, b;
  {
    LeafGradSinkScope scope(a);
    sum(mul(w, x)).backward();  // d/dw = x
    {
      LeafGradSinkScope inner(b);
      sum(mul(w, w)).backward();  // d/dw = 2w, into b
    }
    sum(w).backward();  // back to a: += 1
  }
  EXPECT_FALSE(w.grad().defined());  // nothing reached the leaf yet
  EXPECT_FALSE(a.empty());
  a.flush();
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{5.0, 6.0, 7.0}));
  b.flush();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{7.0, 10.0, 13.0}));
  sum(w).backward();  // no scope: straight into the leaf again
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{8.0, 11.0, 14.0}));
}
