// The reverse-mode engine's buffer handling: gradients are added in place only into buffers
// nothing else reaches (the caller's seed, a tensor returned for two inputs and a retained
// gradient are never written into), and a node's in-place accumulation (Node::grad_target, used
// by linear's backward) gives what fresh buffers give: one input feeding several linears (the
// q/k/v projections), a weight used twice, with and without a leaf-gradient sink, a leaf that
// already has a gradient. Expected values come from matmul / transpose / sum, not from linear.
#include <gtest/gtest.h>

#include "focus/autograd/grad_sink.hpp"
#include "focus/autograd/node.hpp"
#include "focus/autograd/retain.hpp"
#include "focus/ops/ops.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

Tensor rand_leaf(const Shape& s, Rng& rng) {
  return Tensor::randn(s, rng, DType::F64).requires_grad_(true);
}

void expect_close(const Tensor& got, const Tensor& want, double tol = 1e-12) {
  ASSERT_TRUE(got.defined());
  ASSERT_EQ(got.shape(), want.shape());
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], w[i], tol) << "element " << i;
}

// d/dx sum(x @ w^T) summed over several w: a row of column sums of each w, broadcast over rows.
Tensor dx_of_linears(const std::vector<Tensor>& ws, int64_t rows) {
  Tensor acc;
  for (const Tensor& w : ws) {
    const Tensor ones = Tensor::ones({rows, w.size(0)}, DType::F64);
    const Tensor d = matmul(ones, w.detach());  // (R, IN)
    acc = acc.defined() ? add(acc, d) : d;
  }
  return acc;
}

}  // namespace

TEST(AutogradEngine, TheCallersSeedIsNeverWrittenInto) {
  Rng rng(3);
  Tensor x = rand_leaf({4, 3}, rng);
  const Tensor h = mul(x, 2.0);  // non-leaf
  const Tensor y = add(h, h);                                  // dy -> dh twice
  const Tensor seed = Tensor::full({4, 3}, 0.5, DType::F64);
  y.backward(seed);
  EXPECT_EQ(seed.to_vector<double>(), std::vector<double>(12, 0.5));
  expect_close(x.grad(), Tensor::full({4, 3}, 2.0, DType::F64));
}

TEST(AutogradEngine, SharedInputOfThreeLinearsAccumulatesInPlace) {
  Rng rng(5);
  const Tensor leaf = rand_leaf({2, 5, 8}, rng);
  const Tensor wq = rand_leaf({6, 8}, rng), wk = rand_leaf({6, 8}, rng), wv = rand_leaf({4, 8}, rng);
  const Tensor bq = rand_leaf({6}, rng);
  const Tensor x = mul(leaf, 1.0);  // non-leaf: pending buffers
  const Tensor loss = add(add(sum(linear(x, wq, bq)), sum(linear(x, wk))), sum(linear(x, wv)));
  loss.backward();
  const Tensor x2 = reshape(leaf.detach(), {10, 8});
  expect_close(reshape(leaf.grad(), {10, 8}), dx_of_linears({wq, wk, wv}, 10));
  const Tensor ones6 = Tensor::ones({10, 6}, DType::F64);
  expect_close(wq.grad(), matmul(transpose(ones6, 0, 1), x2));
  expect_close(bq.grad(), Tensor::full({6}, 10.0, DType::F64));
}

TEST(AutogradEngine, WeightUsedTwiceAndExistingLeafGradients) {
  Rng rng(7);
  Tensor a = rand_leaf({3, 4}, rng), b = rand_leaf({5, 4}, rng);
  Tensor w = rand_leaf({2, 4}, rng), bias = rand_leaf({2}, rng);
  const auto run = [&] { sum(add(sum(linear(a, w, bias), {0}), sum(linear(b, w, bias), {0}))).backward(); };
  run();
  // dw = ones^T a + ones^T b (column sums of a and b in every row), db = rows of a and b.
  const Tensor cols = add(sum(a.detach(), {0}), sum(b.detach(), {0}));  // (4)
  const Tensor dw = expand(unsqueeze(cols, 0), {2, 4});
  expect_close(w.grad(), dw);
  expect_close(bias.grad(), Tensor::full({2}, 8.0, DType::F64));
  run();  // leaves with gradients: added into them
  expect_close(w.grad(), mul(dw, 2.0));
  expect_close(a.grad(), mul(dx_of_linears({w}, 3), 2.0));

  // The same through a sink: equal gradients, the leaves untouched until the flush.
  a.zero_grad(), b.zero_grad(), w.zero_grad(), bias.zero_grad();
  LeafGradSink sink;
  {
    LeafGradSinkScope scope(sink);
    run();
    run();
  }
  EXPECT_FALSE(w.grad().defined());
  sink.flush();
  expect_close(w.grad(), mul(dw, 2.0));
  expect_close(bias.grad(), Tensor::full({2}, 16.0, DType::F64));
}

TEST(AutogradEngine, RetainedAndUserHeldGradientsAreNotOverwritten) {
  Rng rng(9);
  const Tensor x = rand_leaf({3, 4}, rng), w = rand_leaf({4, 4}, rng);
  const Tensor h = linear(x, w);  // (3, 4)
  retain_grad(h);
  const Tensor loss = add(sum(linear(h, w)), sum(h));
  loss.backward();
  const Tensor dh = h.grad();
  ASSERT_TRUE(dh.defined());
  const auto held = dh.to_vector<double>();
  // dh = ones @ w + ones, then nothing more may land in it.
  expect_close(dh, add(dx_of_linears({w}, 3), Tensor::ones({3, 4}, DType::F64)));
  // A gradient the user holds a handle to is added into in place, as before: both see the sum.
  const Tensor g = w.grad();
  const Tensor before = g.clone();
  sum(linear(x, w)).backward();
  EXPECT_EQ(dh.to_vector<double>(), held);
  const Tensor dw_new = expand(unsqueeze(sum(x.detach(), {0}), 0), {4, 4});
  expect_close(w.grad(), add(before, dw_new));
  expect_close(g, w.grad());
}

TEST(AutogradEngine, GradTargetIsNullOutsideABackward) {
  struct Probe : Node {
    const char* name() const override { return "Probe"; }
    std::vector<Tensor> backward(const Tensor&) override { return {}; }
  } probe;
  Tensor t = Tensor::ones({2}).requires_grad_(true);
  sum(t).backward();  // t has a gradient the probe's edge could reach
  ASSERT_TRUE(t.grad().defined());
  probe.next.push_back(Edge{nullptr, t.impl()->autograd});
  EXPECT_EQ(probe.grad_target(0, DType::F32), nullptr);
  EXPECT_EQ(probe.grad_target(1, DType::F32), nullptr);
}
