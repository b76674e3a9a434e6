// Broadcasting arithmetic: values against hand results, gradients by finite differences.
#include <gtest/gtest.h>

#include <array>

#include "focus/ops/elementwise.hpp"
#include "focus/ops/view.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::rand_input;

TEST(Elementwise, BroadcastValues) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  EXPECT_EQ(add(a, b).to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  Tensor c = Tensor::from_vector(std::vector<float>{2, 4}, {2, 1});
  EXPECT_EQ(div(a, c).to_vector<float>(), (std::vector<float>{0.5, 1, 1.5, 1, 1.25, 1.5}));
  EXPECT_EQ(sub(b, a).shape(), (Shape{2, 3}));
}

TEST(Elementwise, ShapeErrorNamesShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  try {
    add(a, b);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
  }
}

TEST(Elementwise, Gradients) {
  Rng rng(1);
  for (auto op : {0, 1, 2, 3}) {
    Tensor a = rand_input({2, 3, 4}, rng), b = rand_input({3, 1}, rng, 0.5, 1.5);
    EXPECT_TRUE(gradcheck(
        [op](const std::vector<Tensor>& x) {
          switch (op) {
            case 0: return add(x[0], x[1]);
            case 1: return sub(x[0], x[1]);
            case 2: return mul(x[0], x[1]);
            default: return div(x[0], x[1]);
          }
        },
        {a, b}))
        << "op " << op;
  }
  Tensor a = rand_input({3, 2}, rng);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& x) { return neg(x[0]) * 3.0 + 1.0; }, {a}));
}

TEST(Elementwise, GradientAccumulatesAcrossUses) {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2}, {2});
  a.requires_grad_();
  Tensor y = mul(a, a);  // dy/da = 2a
  y.backward(Tensor::ones({2}, DType::F64));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{2, 4}));
  Tensor z = add(a, a);  // backward accumulates: + 2
  z.backward(Tensor::ones({2}, DType::F64));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{4, 6}));
  EXPECT_THROW(z.backward(Tensor::ones({2}, DType::F64)), StateError);  // graph freed
}

TEST(Elementwise, SumToMatchesNaiveForEveryPattern) {
  Rng rng(9);
  Tensor g = Tensor::randn({3, 4, 5, 2}, rng, DType::F64);
  for (const Shape& target : {Shape{3, 4, 1, 1}, Shape{5, 2}, Shape{4, 1, 2}, Shape{1}, Shape{3, 1, 1, 1}}) {
    const Tensor got = sum_to(g, target);
    ASSERT_EQ(got.shape(), target);
    // Naive: accumulate every element of g into its broadcast source position.
    std::vector<double> want(size_t(numel(target)), 0.0);
    const auto gv = g.to_vector<double>();
    const int64_t off = 4 - int64_t(target.size());
    for (int64_t i = 0; i < g.numel(); ++i) {
      int64_t rem = i, idx = 0, stride = 1;
      std::array<int64_t, 4> c{};
      for (int64_t d = 3; d >= 0; --d) { c[d] = rem % g.shape()[d]; rem /= g.shape()[d]; }
      for (int64_t d = int64_t(target.size()) - 1; d >= 0; --d) {
        idx += (target[d] == 1 ? 0 : c[d + off]) * stride;
        stride *= target[d];
      }
      want[size_t(idx)] += gv[size_t(i)];
    }
    const auto gotv = got.to_vector<double>();
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(gotv[i], want[i], 1e-12) << to_string(target);
  }
}
