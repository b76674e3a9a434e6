// matmul / linear and the view ops: values against the reference GEMM, gradients by finite
// differences, including transposed (non-copied) operands and broadcast batches.
#include <gtest/gtest.h>

#include "focus/kernels/gemm.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/view.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::rand_input;

using Inputs = std::vector<Tensor>;

TEST(Matmul, MatchesNaiveOnTransposedViews) {
  Rng rng(3);
  Tensor a = Tensor::randn({5, 7}, rng), b = Tensor::randn({4, 7}, rng);
  Tensor c = matmul(a, b.transpose(0, 1));  // (5, 4), b passed as a transpose
  std::vector<float> ref(20);
  gemm_reference<float>(false, true, 5, 4, 7, 1.f, a.data<float>(), 7, b.data<float>(), 7, 0.f,
                        ref.data(), 4);
  const auto got = c.to_vector<float>();
  for (int i = 0; i < 20; ++i) EXPECT_NEAR(got[i], ref[i], 1e-5);
}

TEST(Matmul, Gradients) {
  Rng rng(4);
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return matmul(x[0], x[1]); },
                        {rand_input({3, 4}, rng), rand_input({4, 5}, rng)}));
  // Batched with broadcasting of the second operand's batch.
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return matmul(x[0], x[1]); },
                        {rand_input({2, 3, 3, 4}, rng), rand_input({3, 4, 2}, rng)}));
  // Transposed operand and folded batch.
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return matmul(x[0], transpose(x[1], 0, 1)); },
                        {rand_input({2, 3, 4}, rng), rand_input({5, 4}, rng)}));
  // Vectors.
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return matmul(x[0], x[1]); },
                        {rand_input({4}, rng), rand_input({4, 3}, rng)}));
}

TEST(Matmul, LinearGradients) {
  Rng rng(5);
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return linear(x[0], x[1], x[2]); },
                        {rand_input({2, 3, 4}, rng), rand_input({5, 4}, rng), rand_input({5}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return linear(x[0], x[1]); },
                        {rand_input({3, 4}, rng), rand_input({2, 4}, rng)}));
}

TEST(Matmul, ShapeErrors) {
  EXPECT_THROW(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 2})), ShapeError);
  EXPECT_THROW(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 2})), ShapeError);
}

TEST(View, Gradients) {
  Rng rng(6);
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return reshape(permute(x[0], {2, 0, 1}), {4, -1}); },
                        {rand_input({2, 3, 4}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return slice(x[0], 1, 1, 4, 2) * 2.0; },
                        {rand_input({2, 5}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return select(x[0], 0, -1); },
                        {rand_input({3, 2}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return expand(x[0], {4, 3, 2}); },
                        {rand_input({3, 1}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return contiguous(transpose(x[0], 0, 1)); },
                        {rand_input({3, 2}, rng)}));
}
