// int8 inference weights in the layers (Module::set_inference_dtype(I8)): Linear and Conv2d run
// the int8 kernels only under NoGradGuard and stay within quantisation error of F32; with grad
// enabled, after train(true) or set_inference_dtype(F32) they are the F32 layers again, exactly;
// Conv2d::forward_bn folds an eval batch norm and ReLU into the int8 product and equals the three
// layers in turn; the QuantProbe sees every int8 layer; named_modules names them.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/autograd/node.hpp"
#include "focus/nn/layers.hpp"
#include "focus/nn/quant_probe.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/norm.hpp"
#include "focus/ops/unary.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

double rel_l2(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<float>(), y = b.to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double e = 0, r = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    r += double(y[i]) * y[i];
  }
  return std::sqrt(e / r);
}

Tensor randn(const Shape& s, Rng& rng) {
  Tensor t = Tensor::empty(s);
  rng.fill_normal(t.data<float>(), t.numel(), 0.f, 1.f);
  return t;
}

TEST(Int8Layers, LinearRunsInt8OnlyForInference) {
  Rng rng(1);
  Linear lin(37, 19, rng);
  lin.eval();
  const Tensor x = randn({3, 5, 37}, rng);  // (B, L, IN)
  const Tensor ref = linear(x, lin.weight, lin.bias);
  lin.set_inference_dtype(DType::I8);
  ASSERT_TRUE(lin.int8_active());
  Tensor y;
  {
    NoGradGuard ng;
    y = lin.forward(x);
  }
  EXPECT_EQ(y.shape(), ref.shape());
  const double e = rel_l2(y, ref);
  EXPECT_GT(e, 0.0);  // int8 really ran
  EXPECT_LT(e, 0.03);
  // Grad enabled: the F32 weight, bit for bit.
  EXPECT_EQ(lin.forward(x).to_vector<float>(), ref.to_vector<float>());
  lin.train(true);
  EXPECT_FALSE(lin.int8_active());
}

TEST(Int8Layers, ConvAndFusedBatchNorm) {
  Rng rng(2);
  Conv2d conv(3, 8, 3, rng, 1, 1, false);
  BatchNorm2d bn(8);
  // Non-trivial running statistics and affine parameters.
  for (const Tensor& t : {bn.running_mean, bn.bias}) {
    Tensor h = t;
    rng.fill_normal(h.data<float>(), h.numel(), 0.f, 0.5f);
  }
  for (const Tensor& t : {bn.running_var, bn.weight}) {
    Tensor h = t;
    rng.fill_uniform(h.data<float>(), h.numel(), 0.5f, 2.f);
  }
  conv.eval();
  bn.eval();
  const Tensor x = randn({2, 3, 10, 9}, rng);  // (N, C, H, W)
  NoGradGuard ng;
  const Tensor ref = relu(bn.forward(conv.forward(x)));
  EXPECT_EQ(conv.forward_bn(x, bn, true).to_vector<float>(), ref.to_vector<float>());  // F32: same ops
  conv.set_inference_dtype(DType::I8);
  ASSERT_TRUE(conv.int8_active());
  const Tensor q = conv.forward(x);
  const double e = rel_l2(q, conv2d(x, conv.weight, Tensor(), 1, 1));
  EXPECT_GT(e, 0.0);
  EXPECT_LT(e, 0.03);
  // Fused: the int8 conv, then bn and relu, up to float rounding of the folded scale.
  const Tensor fused = conv.forward_bn(x, bn, true), unfused = relu(bn.forward(q));
  const auto a = fused.to_vector<float>(), b = unfused.to_vector<float>();
  int zeros = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], b[i], 1e-4 * (1 + std::fabs(b[i]))) << i;
    zeros += b[i] == 0.0f;
  }
  EXPECT_GT(zeros, 0);  // the ReLU clipped something
  const Tensor nr = conv.forward_bn(x, bn, false);
  EXPECT_LT(rel_l2(nr, bn.forward(q)), 1e-5);
  conv.set_inference_dtype(DType::F32);
  EXPECT_FALSE(conv.int8_active());
  EXPECT_EQ(conv.forward(x).to_vector<float>(), conv2d(x, conv.weight, Tensor(), 1, 1).to_vector<float>());
}

class Two : public Module {
 public:
  explicit Two(Rng& rng)
      : a(register_module("a", std::make_shared<Linear>(6, 4, rng))),
        c(register_module("c", std::make_shared<Conv2d>(2, 3, 1, rng))) {}
  std::shared_ptr<Linear> a;
  std::shared_ptr<Conv2d> c;
};

TEST(Int8Layers, ProbeAndNames) {
  Rng rng(4);
  Two m(rng);
  const auto names = m.named_modules();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].first, "a");
  EXPECT_EQ(names[1].first, "c");
  m.eval();
  m.set_inference_dtype(DType::I8);
  const Tensor x = randn({5, 6}, rng), img = randn({1, 2, 4, 4}, rng);
  QuantProbe probe;
  {
    NoGradGuard ng;
    QuantProbeScope scope(probe);
    m.a->forward(x);
    m.c->forward(img);
    m.c->forward(img);
  }
  ASSERT_EQ(probe.sums.size(), 2u);
  const auto& sa = probe.sums.at(m.a.get());
  EXPECT_EQ(sa.calls, 1);
  EXPECT_GT(sa.err2, 0.0);
  EXPECT_GT(sa.ref2, sa.err2);
  EXPECT_EQ(probe.sums.at(m.c.get()).calls, 2);
  EXPECT_EQ(quant_probe(), nullptr);  // the scope is gone
  EXPECT_THROW(m.set_inference_dtype(DType::I32), DTypeError);
}

}  // namespace
