// conv2d and pooling ops: finite-difference gradients (F64), the op against the direct reference
// kernel (F32, values and gradients), non-contiguous inputs, and typed errors naming the shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "focus/kernels/conv.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/view.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::max_rel_diff;
using focus::testing::rand_input;

using Inputs = std::vector<Tensor>;
using focus::testing::expect_error;

namespace {

// An F64 leaf whose values are a shuffled 0, 0.01, 0.02, ...: no two differ by less than 0.01,
// so the finite-difference step (1e-6) never changes which element wins a max-pool window.
Tensor distinct_input(const Shape& shape, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.01 * static_cast<double>(i) - 0.3;
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.randint(static_cast<int64_t>(i))]);
  Tensor t = Tensor::from_vector(v, shape);
  t.requires_grad_(true);
  return t;
}

}  // namespace

TEST(Conv2d, Gradients) {
  Rng rng(31);
  // stride 1, padding 1, bias, non-square input
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return conv2d(x[0], x[1], x[2], 1, 1); },
                        {rand_input({2, 3, 5, 6}, rng), rand_input({4, 3, 3, 3}, rng),
                         rand_input({4}, rng)}));
  // stride 2, padding 0, no bias, non-square kernel
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return conv2d(x[0], x[1], Tensor(), 2, 0); },
                        {rand_input({1, 2, 7, 5}, rng), rand_input({3, 2, 3, 2}, rng)}));
  // stride 2, padding 1, bias
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return conv2d(x[0], x[1], x[2], 2, 1); },
                        {rand_input({2, 2, 6, 7}, rng), rand_input({2, 2, 3, 3}, rng),
                         rand_input({2}, rng)}));
  // stride 1, padding 0, non-square input and kernel
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return conv2d(x[0], x[1], x[2], 1, 0); },
                        {rand_input({1, 3, 4, 6}, rng), rand_input({2, 3, 2, 3}, rng),
                         rand_input({2}, rng)}));
  // pointwise (1x1): the path without im2col
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return conv2d(x[0], x[1], x[2]); },
                        {rand_input({2, 4, 3, 3}, rng), rand_input({3, 4, 1, 1}, rng),
                         rand_input({3}, rng)}));
  // only the weight requires grad
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return conv2d(x[0], x[1], Tensor(), 1, 1); },
                        {rand_input({2, 2, 4, 4}, rng, -1, 1, false), rand_input({2, 2, 3, 3}, rng)}));
}

TEST(Conv2d, MatchesReferenceKernelWithGradients) {
  // F32 op on each fast kernel (im2col, oneDNN direct and Winograd; oneDNN's odd shapes fall back
  // to im2col where it has no primitive) vs the same op with the direct reference kernel forced,
  // on random shapes. Winograd: 1e-4 (its transforms scale the rounding; kernels/conv_onednn.hpp).
  Rng rng(32);
  for (int trial = 0; trial < 8; ++trial) {
    const int64_t N = 1 + rng.randint(4), C = 1 + rng.randint(5), O = 1 + rng.randint(6);
    const int64_t K = 1 + rng.randint(3), s = 1 + rng.randint(2), p = rng.randint(2);
    const int64_t H = K + rng.randint(9), W = K + rng.randint(9);
    const Tensor x = Tensor::randn({N, C, H, W}, rng), w = Tensor::randn({O, C, K, K}, rng),
                 b = Tensor::randn({O}, rng);
    Tensor out[4], grads[4][3];
    const ConvKernel kernels[4] = {ConvKernel::Reference, ConvKernel::Im2col, ConvKernel::OneDnn,
                                   ConvKernel::Winograd};
    for (int k = 0; k < 4; ++k) {
      set_conv_kernel(kernels[k]);
      Tensor xr = x.clone(), wr = w.clone(), br = b.clone();
      xr.requires_grad_(true);
      wr.requires_grad_(true);
      br.requires_grad_(true);
      out[k] = conv2d(xr, wr, br, s, p);
      out[k].backward(Tensor::ones(out[k].shape()));
      grads[k][0] = xr.grad();
      grads[k][1] = wr.grad();
      grads[k][2] = br.grad();
    }
    set_conv_kernel(ConvKernel::Auto);
    for (int k = 1; k < 4; ++k) {
      const double tol = kernels[k] == ConvKernel::Winograd ? 1e-4 : 1e-5;
      EXPECT_LT(max_rel_diff(out[k], out[0]), tol) << "trial " << trial << " kernel " << k;
      for (int i = 0; i < 3; ++i)
        EXPECT_LT(max_rel_diff(grads[k][i], grads[0][i]), tol) << "trial " << trial << " kernel " << k << " grad " << i;
    }
  }
}

TEST(Conv2d, NonContiguousInput) {
  Rng rng(33);
  const Tensor x = Tensor::randn({2, 3, 6, 5}, rng), w = Tensor::randn({4, 3, 3, 3}, rng);
  const Tensor xt = x.transpose(2, 3).contiguous().transpose(2, 3);  // same values, strided
  ASSERT_FALSE(xt.is_contiguous());
  EXPECT_LT(max_rel_diff(conv2d(xt, w, Tensor(), 1, 1), conv2d(x, w, Tensor(), 1, 1)), 1e-6);
}

TEST(Conv2d, Errors) {
  const Tensor x = Tensor::zeros({2, 3, 5, 5});
  expect_error<ShapeError>([&] { conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor()); },
                           {"(2, 3, 5, 5)", "(4, 2, 3, 3)", "channels"});
  expect_error<ShapeError>([&] { conv2d(x, Tensor::zeros({4, 3, 6, 3}), Tensor(), 1, 0); },
                           {"(2, 3, 5, 5)", "(4, 3, 6, 3)", "larger"});
  EXPECT_NO_THROW(conv2d(x, Tensor::zeros({4, 3, 6, 3}), Tensor(), 1, 1));  // fits once padded
  expect_error<ShapeError>([&] { conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({3})); },
                           {"(3,)", "(4, 3, 3, 3)"});
  expect_error<ShapeError>([&] { conv2d(Tensor::zeros({3, 5, 5}), Tensor::zeros({4, 3, 3, 3}), Tensor()); },
                           {"(3, 5, 5)"});
  EXPECT_THROW(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), 0), ValueError);
  EXPECT_THROW(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), 1, -1), ValueError);
  EXPECT_THROW(conv2d(x, Tensor::zeros({4, 3, 3, 3}, DType::F64), Tensor()), DTypeError);
}

TEST(Pool2d, MaxGradients) {
  // Inputs without ties (distinct_input): max is differentiable there, with the gradient going
  // to the one winner; at a tie the finite difference would split it and disagree.
  Rng rng(34);
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return max_pool2d(x[0], 2); },
                        {distinct_input({2, 3, 4, 6}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return max_pool2d(x[0], 3, 2, 1); },
                        {distinct_input({1, 2, 7, 5}, rng)}));
  // Overlapping windows (stride 1): one element can win several windows; its gradients add.
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return max_pool2d(x[0], 2, 1); },
                        {distinct_input({1, 2, 4, 5}, rng)}));
}

TEST(Pool2d, AvgGradients) {
  Rng rng(35);
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return avg_pool2d(x[0], 2); },
                        {rand_input({2, 3, 4, 6}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return avg_pool2d(x[0], 3, 2, 1); },
                        {rand_input({1, 2, 7, 5}, rng)}));
  EXPECT_TRUE(gradcheck([](const Inputs& x) { return global_avg_pool2d(x[0]); },
                        {rand_input({2, 3, 4, 5}, rng)}));
}

TEST(Pool2d, Values) {
  // (1, 1, 4, 4) holding 0..15.
  const Tensor x = Tensor::arange(16).view({1, 1, 4, 4});
  EXPECT_EQ(max_pool2d(x, 2).to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  EXPECT_EQ(avg_pool2d(x, 2).to_vector<float>(), (std::vector<float>{2.5, 4.5, 10.5, 12.5}));
  // Padding counts in the divisor (count_include_pad): corner window {0} / 4.
  EXPECT_FLOAT_EQ(avg_pool2d(x, 2, 2, 1).to_vector<float>()[0], 0.f / 4);
  EXPECT_FLOAT_EQ(avg_pool2d(x, 2, 2, 1).to_vector<float>()[1], (1.f + 2.f) / 4);
  // Padding is -inf for max: an all-negative input still pools to its own values.
  const Tensor neg = add(mul(x, -1.0), -1.0);
  EXPECT_EQ(max_pool2d(neg, 2, 2, 1).to_vector<float>()[0], -1.f);
  EXPECT_EQ(global_avg_pool2d(x).to_vector<float>(), (std::vector<float>{7.5}));
  EXPECT_EQ(max_pool2d(x, 2).shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(max_pool2d(x, 3, 1).shape(), (Shape{1, 1, 2, 2}));
}

TEST(Pool2d, Errors) {
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  expect_error<ShapeError>([&] { max_pool2d(x, 5); }, {"(2, 3, 4, 4)", "larger"});
  expect_error<ShapeError>([&] { avg_pool2d(x, 7, 1, 1); }, {"(2, 3, 4, 4)"});
  EXPECT_NO_THROW(max_pool2d(x, 5, 1, 2));  // fits once padded
  EXPECT_THROW(max_pool2d(x, 2, 2, 2), ValueError);  // padding above kernel / 2
  EXPECT_THROW(avg_pool2d(x, 0), ValueError);
  EXPECT_THROW(avg_pool2d(x, 2, 0), ValueError);
  expect_error<ShapeError>([&] { max_pool2d(Tensor::zeros({3, 4, 4}), 2); }, {"(3, 4, 4)"});
  expect_error<ShapeError>([&] { global_avg_pool2d(Tensor::zeros({3, 4})); }, {"(3, 4)"});
  EXPECT_THROW(max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::I64), 2), DTypeError);
}
