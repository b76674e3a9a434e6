// Indexing and joining ops: values against hand-computed results and naive loops, gradients by
// finite differences (with repeated indices, so scatter-adds must add), I32 and I64 indices,
// views from split, and typed errors naming the offending index and size or the shapes.
#include <gtest/gtest.h>

#include <string>

#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::rand_input;

using Inputs = std::vector<Tensor>;
using focus::testing::expect_error;

namespace {

Tensor idx64(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector(v, s); }

}  // namespace

TEST(Embedding, ValuesAndShape) {
  const Tensor w = Tensor::arange(12).view({4, 3});  // (V=4, D=3): row v is 3v, 3v+1, 3v+2
  const Tensor out = embedding(w, idx64({2, 0, 2, 3}, {2, 2}));
  EXPECT_EQ(out.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{6, 7, 8, 0, 1, 2, 6, 7, 8, 9, 10, 11}));
  const Tensor i32 = Tensor::from_vector(std::vector<int32_t>{1, 1}, {2});
  EXPECT_EQ(embedding(w, i32).to_vector<float>(), (std::vector<float>{3, 4, 5, 3, 4, 5}));
}

TEST(Embedding, Gradients) {
  Rng rng(41);
  const Tensor rep = idx64({1, 3, 1, 1, 0, 3}, {2, 3});  // repeated rows: gradients must add
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return embedding(x[0], rep); },
                        {rand_input({5, 4}, rng)}));
  const Tensor rep32 = Tensor::from_vector(std::vector<int32_t>{2, 2, 0}, {3});
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return embedding(x[0], rep32); },
                        {rand_input({3, 2}, rng)}));
}

TEST(Embedding, ScatterAddMatchesNaiveAtThreadedSize) {
  // 3000 lookups into 50 rows of 64: the backward splits columns over threads.
  Rng rng(42);
  const int64_t V = 50, D = 64, n = 3000;
  std::vector<int64_t> iv(n);
  for (auto& i : iv) i = rng.randint(V);
  Tensor w = Tensor::randn({V, D}, rng);
  w.requires_grad_(true);
  const Tensor g = Tensor::randn({n, D}, rng);
  embedding(w, idx64(iv, {n})).backward(g);
  std::vector<double> want(V * D, 0.0);
  const auto gv = g.to_vector<float>();
  for (int64_t k = 0; k < n; ++k)
    for (int64_t d = 0; d < D; ++d) want[iv[k] * D + d] += gv[k * D + d];
  const auto got = w.grad().to_vector<float>();
  for (int64_t i = 0; i < V * D; ++i) ASSERT_NEAR(got[i], want[i], 1e-3) << i;
}

TEST(Embedding, Errors) {
  const Tensor w = Tensor::zeros({4, 3});
  expect_error<ValueError>([&] { embedding(w, idx64({1, 4}, {2})); }, {"index 4", "size 4"});
  expect_error<ValueError>([&] { embedding(w, idx64({-1}, {1})); }, {"index -1", "size 4"});
  EXPECT_THROW(embedding(w, Tensor::zeros({2})), DTypeError);
  expect_error<ShapeError>([&] { embedding(Tensor::zeros({4}), idx64({0}, {1})); }, {"(4,)"});
}

TEST(Concat, ValuesAndGradients) {
  const Tensor a = Tensor::arange(6).view({2, 3}), b = add(Tensor::arange(4).view({2, 2}), 10.0);
  const Tensor c = concat({a, b}, 1);  // (2, 5)
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{0, 1, 2, 10, 11, 3, 4, 5, 12, 13}));
  EXPECT_EQ(concat({a, a}, -2).shape(), (Shape{4, 3}));
  const Tensor ints = concat({idx64({1, 2}, {2}), idx64({3}, {1})}, 0);  // any dtype joins
  EXPECT_EQ(ints.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));

  Rng rng(43);
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return concat({x[0], x[1], x[2]}, 1); },
                        {rand_input({2, 1, 3}, rng), rand_input({2, 4, 3}, rng),
                         rand_input({2, 2, 3}, rng)}));
  // The same tensor twice, and a part that needs no gradient.
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return concat({x[0], x[1], x[0]}, 0); },
                        {rand_input({2, 3}, rng), rand_input({1, 3}, rng, -1, 1, false)}));
}

TEST(Concat, Errors) {
  expect_error<ShapeError>([] { concat({Tensor::zeros({2, 3}), Tensor::zeros({3, 2})}, 1); },
                           {"(3, 2)", "(2, 3)"});
  EXPECT_THROW(concat({Tensor::zeros({2, 3}), Tensor::zeros({2})}, 0), ShapeError);
  EXPECT_THROW(concat({Tensor::zeros({2}), Tensor::zeros({2}, DType::F64)}, 0), DTypeError);
  EXPECT_THROW(concat({}, 0), ValueError);
  EXPECT_THROW(concat({Tensor::zeros({2})}, 1), ShapeError);
}

TEST(Split, ViewsAndGradients) {
  const Tensor a = Tensor::arange(12).view({3, 4});
  const auto parts = split(a, {1, 3}, 1);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].shape(), (Shape{3, 1}));
  EXPECT_EQ(parts[1].to_vector<float>(), (std::vector<float>{1, 2, 3, 5, 6, 7, 9, 10, 11}));
  EXPECT_TRUE(parts[1].same_storage(a));  // views, not copies

  Rng rng(44);
  EXPECT_TRUE(gradcheck(
      [](const Inputs& x) {
        const auto p = split(x[0], {2, 0, 3}, -1);
        return concat({mul(p[0], 2.0), p[1], mul(p[2], p[2])}, -1);
      },
      {rand_input({2, 5}, rng)}));
  // Only one part used: the others get no gradient, the input's grad is zero there.
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return split(x[0], {1, 2}, 0)[1]; },
                        {rand_input({3, 2}, rng)}));
}

TEST(Split, Errors) {
  const Tensor a = Tensor::zeros({3, 4});
  expect_error<ShapeError>([&] { split(a, {1, 2}, 1); }, {"(3, 4)", "sum to 3"});
  EXPECT_THROW(split(a, {5, -1}, 1), ValueError);
  EXPECT_THROW(split(a, {4}, 2), ShapeError);
}

TEST(IndexSelect, ValuesAndGradients) {
  const Tensor a = Tensor::arange(12).view({3, 4});
  EXPECT_EQ(index_select(a, 1, idx64({3, 0, 3}, {3})).to_vector<float>(),
            (std::vector<float>{3, 0, 3, 7, 4, 7, 11, 8, 11}));
  EXPECT_EQ(index_select(a, 0, Tensor::from_vector(std::vector<int32_t>{2}, {1})).to_vector<float>(),
            (std::vector<float>{8, 9, 10, 11}));

  Rng rng(45);
  const Tensor rep = idx64({1, 1, 0, 2, 1}, {5});
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return index_select(x[0], 1, rep); },
                        {rand_input({2, 3, 2}, rng)}));
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return index_select(x[0], 0, rep); },
                        {rand_input({3, 2}, rng)}));
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return index_select(x[0], -1, rep); },
                        {rand_input({2, 3}, rng)}));
}

TEST(IndexSelect, Errors) {
  const Tensor a = Tensor::zeros({3, 4});
  expect_error<ValueError>([&] { index_select(a, 1, idx64({0, 4}, {2})); }, {"index 4", "size 4"});
  expect_error<ShapeError>([&] { index_select(a, 1, idx64({0, 1}, {1, 2})); }, {"(1, 2)"});
  EXPECT_THROW(index_select(a, 2, idx64({0}, {1})), ShapeError);
}

TEST(Gather, ValuesAndGradients) {
  // torch.gather(t, 1, [[0, 0], [1, 0]]) with t = [[1, 2], [3, 4]] -> [[1, 1], [4, 3]].
  const Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(gather(t, 1, idx64({0, 0, 1, 0}, {2, 2})).to_vector<float>(),
            (std::vector<float>{1, 1, 4, 3}));
  // dim 0, index smaller than the input along dim 1: out[i][j] = a[index[i][j]][j].
  const Tensor a = Tensor::arange(12).view({3, 4});
  EXPECT_EQ(gather(a, 0, idx64({2, 0, 1, 1, 0, 2}, {3, 2})).to_vector<float>(),
            (std::vector<float>{8, 1, 4, 5, 0, 9}));

  Rng rng(46);
  const Tensor i1 = idx64({2, 2, 0, 1, 1, 1}, {2, 3});  // repeats within rows
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return gather(x[0], 1, i1); },
                        {rand_input({2, 4}, rng)}));
  const Tensor i0 = idx64({1, 0, 1, 1, 2, 1}, {2, 3});  // dim 0, repeats down columns
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return gather(x[0], 0, i0); },
                        {rand_input({3, 4}, rng)}));
  const Tensor i3 = Tensor::from_vector(std::vector<int32_t>{0, 2, 2, 1, 0, 0, 1, 2}, {2, 2, 2});
  EXPECT_TRUE(gradcheck([&](const Inputs& x) { return gather(x[0], -1, i3); },
                        {rand_input({2, 3, 3}, rng)}));
}

TEST(Gather, Errors) {
  const Tensor a = Tensor::zeros({3, 4});
  expect_error<ValueError>([&] { gather(a, 1, idx64({0, 7}, {1, 2})); }, {"index 7", "size 4"});
  expect_error<ShapeError>([&] { gather(a, 1, idx64({0, 1}, {2})); }, {"(2,)", "(3, 4)"});
  expect_error<ShapeError>([&] { gather(a, 1, idx64({0, 0, 0, 0}, {4, 1})); }, {"(4, 1)", "(3, 4)"});
}
