// Leaf-gradient sinks: inside a scope, backward leaves .grad alone and fills the sink; flush adds
// the sink into the leaves (creating .grad where there was none); scopes nest and restore. The
// leaf-ready callback (LeafReadyScope): once per leaf, with its final gradient (a tied leaf after
// its last use); a gradient it takes is not flushed.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

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

// LeafReadyScope: the callback sees each leaf once, when its gradient of this backward is final:
// a leaf used twice (first and last in the forward, like a tied embedding) only after its second
// use, with the sum of both uses; leaves used late in the forward are final first.
TEST(GradSink, LeafReadyCallbackSeesEachLeafOnceWithItsFinalGradient) {
  Tensor tied = Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2}).requires_grad_(true);
  Tensor mid = Tensor::from_vector(std::vector<double>{3.0, -1.0}, {2}).requires_grad_(true);
  Tensor unused = Tensor::from_vector(std::vector<double>{5.0}, {1}).requires_grad_(true);
  for (const bool with_sink : {true, false}) {
    tied.zero_grad();
    mid.zero_grad();
    std::vector<std::pair<const AutogradMeta*, std::vector<double>>> seen;
    LeafGradSink sink;
    {
      std::optional<LeafGradSinkScope> sink_scope;
      if (with_sink) sink_scope.emplace(sink);
      size_t reached = 0;
      const LeafReadyScope ready(
          [&](const AutogradMeta& leaf, Tensor* g) {
            EXPECT_EQ(reached, 2u);  // told first
            seen.emplace_back(&leaf, g && g->defined() ? g->to_vector<double>() : std::vector<double>{});
          },
          [&](const std::vector<const AutogradMeta*>& leaves) {
            reached = leaves.size();
            for (const AutogradMeta* l : leaves) EXPECT_NE(l, unused.impl()->autograd.get());
          });
      // y = sum(tanh(tied * mid) * tied): tied is used first and last.
      Tensor h = tanh(mul(tied, mid));
      sum(mul(h, tied)).backward();
    }
    ASSERT_EQ(seen.size(), 2u) << "with_sink " << with_sink;  // `unused` is not in the graph
    // d/dtied = tanh(t m) + t m (1 - tanh^2(t m)); d/dmid = t^2 (1 - tanh^2(t m)).
    std::vector<double> dt, dm;
    for (int i = 0; i < 2; ++i) {
      const double t = i == 0 ? 1.0 : 2.0, m = i == 0 ? 3.0 : -1.0, th = std::tanh(t * m);
      dt.push_back(th + t * m * (1 - th * th));
      dm.push_back(t * t * (1 - th * th));
    }
    // Both are final at the node of tied * mid (tied's first use in the forward, its last in
    // the backward): called in that node's input order, with tied's two uses summed.
    EXPECT_EQ(seen[0].first, tied.impl()->autograd.get());
    EXPECT_EQ(seen[1].first, mid.impl()->autograd.get());
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(seen[0].second.at(size_t(i)), dt[size_t(i)], 1e-12);
      EXPECT_NEAR(seen[1].second.at(size_t(i)), dm[size_t(i)], 1e-12);
    }
    if (with_sink) sink.flush();
    EXPECT_NEAR(tied.grad().to_vector<double>()[1], dt[1], 1e-12);
  }
}

// A gradient the callback takes is not added again by flush(); the others are.
TEST(GradSink, GradientTakenByTheCallbackIsNotFlushed) {
  Tensor a = Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2}).requires_grad_(true);
  Tensor b = Tensor::from_vector(std::vector<double>{3.0, 4.0}, {2}).requires_grad_(true);
  LeafGradSink sink;
  std::vector<double> taken;
  {
    LeafGradSinkScope scope(sink);
    const LeafReadyScope ready([&](const AutogradMeta& leaf, Tensor* g) {
      if (&leaf == a.impl()->autograd.get() && g) {
        taken = g->to_vector<double>();
        *g = Tensor();
      }
    });
    sum(mul(a, b)).backward();
  }
  sink.flush();
  EXPECT_EQ(taken, (std::vector<double>{3.0, 4.0}));
  EXPECT_FALSE(a.grad().defined());
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1.0, 2.0}));
  // The scope is gone: backward no longer calls it, and the sink takes the leaf again.
  {
    LeafGradSinkScope scope(sink);
    sum(a).backward();
  }
  sink.flush();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
}
