// scaled_dot_product_attention with each kernel (fused and reference, through the global switch):
// values and probabilities against a naive per-element loop for every mask kind, fully masked
// rows, grouped-query heads against explicitly repeated K/V, dropout reproducibility,
// finite-difference gradients, and the input checks.
//   Letters: B batch, H query heads, Hkv K/V heads, Lq queries, Lk keys, D head dim.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "focus/ops/attention.hpp"
#include "focus/ops/dropout.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "nn/naive_attention.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::max_abs_diff;
using focus::testing::max_rel_diff;
using focus::testing::Naive;
using focus::testing::naive_attention;
using focus::testing::rand_input;

using Inputs = std::vector<Tensor>;

namespace {

struct Case {
  const char* name;
  int64_t B, H, Hkv, Lq, Lk, D;
  AttentionOptions opt;
};

// One case per mask kind (the bias shapes are filled in by the test, they need an Rng).
std::vector<Case> cases() {
  std::vector<Case> cs;
  cs.push_back({"none", 2, 2, 2, 3, 4, 3, {}});
  Case c{"causal", 2, 2, 2, 4, 4, 3, {}};
  c.opt.causal = true;
  cs.push_back(c);
  c = {"causal_cross", 1, 2, 2, 2, 5, 3, {}};  // Lq < Lk: the queries are the last two positions
  c.opt.causal = true;
  cs.push_back(c);
  c = {"key_lengths", 3, 2, 2, 3, 4, 2, {}};
  c.opt.key_lengths = Tensor::from_vector(std::vector<int64_t>{4, 1, 2}, {3});
  cs.push_back(c);
  c = {"key_padding_mask", 2, 2, 1, 3, 4, 2, {}};
  c.opt.key_padding_mask =
      Tensor::from_vector(std::vector<int64_t>{0, 1, 0, 1, 1, 0, 0, 0}, {2, 4});
  cs.push_back(c);
  c = {"bias", 2, 2, 2, 3, 4, 2, {}};  // bias set below
  cs.push_back(c);
  c = {"gqa", 2, 4, 2, 3, 4, 2, {}};
  cs.push_back(c);
  c = {"cross_scale", 2, 2, 2, 2, 5, 3, {}};
  c.opt.scale = 0.7;
  cs.push_back(c);
  c = {"all_masks_gqa", 2, 4, 2, 3, 4, 2, {}};
  c.opt.causal = true;
  c.opt.key_lengths = Tensor::from_vector(std::vector<int64_t>{3, 2}, {2});
  c.opt.key_padding_mask = Tensor::from_vector(std::vector<double>{1, 0, 0, 0, 0, 0, 0, 1}, {2, 4});
  cs.push_back(c);
  return cs;
}

class Attention : public ::testing::TestWithParam<AttentionKernel> {
 protected:
  void SetUp() override { set_attention_kernel(GetParam()); }
  void TearDown() override { set_attention_kernel(AttentionKernel::Auto); }
};

INSTANTIATE_TEST_SUITE_P(Kernels, Attention,
                         ::testing::Values(AttentionKernel::Fused, AttentionKernel::Reference),
                         [](const auto& info) { return attention_kernel_name(info.param); });

}  // namespace

TEST_P(Attention, MatchesNaiveForEveryMaskKind) {
  Rng rng(11);
  for (Case c : cases()) {
    SCOPED_TRACE(c.name);
    const Tensor q = Tensor::randn({c.B, c.H, c.Lq, c.D}, rng, DType::F64);    // (B, H, Lq, D)
    const Tensor k = Tensor::randn({c.B, c.Hkv, c.Lk, c.D}, rng, DType::F64);  // (B, Hkv, Lk, D)
    const Tensor v = Tensor::randn({c.B, c.Hkv, c.Lk, c.D}, rng, DType::F64);
    if (std::string(c.name) == "bias")
      c.opt.bias = Tensor::randn({c.B, 1, c.Lq, c.Lk}, rng, DType::F64);  // broadcast over H
    if (std::string(c.name) == "all_masks_gqa")
      c.opt.bias = Tensor::randn({c.Lq, c.Lk}, rng, DType::F64);  // broadcast over B, H
    Tensor w;
    const Tensor out = scaled_dot_product_attention(q, k, v, c.opt, &w);
    ASSERT_EQ(out.shape(), Shape({c.B, c.H, c.Lq, c.D}));
    ASSERT_EQ(w.shape(), Shape({c.B, c.H, c.Lq, c.Lk}));
    const Naive ref = naive_attention(q, k, v, c.opt);
    EXPECT_LT(max_abs_diff(out.to_vector<double>(), ref.out), 1e-12);
    EXPECT_LT(max_abs_diff(w.to_vector<double>(), ref.weights), 1e-12);
    // F32 agrees with the F64 reference to float precision.
    AttentionOptions o32 = c.opt;
    if (o32.bias.defined()) o32.bias = o32.bias.to(DType::F32);
    const Tensor out32 =
        scaled_dot_product_attention(q.to(DType::F32), k.to(DType::F32), v.to(DType::F32), o32);
    EXPECT_LT(max_abs_diff(out32.to_vector<double>(), ref.out), 1e-5);
  }
}

TEST_P(Attention, WeightRowsSumToOneAndMaskedRowsAreZero) {
  Rng rng(12);
  // Batch 1 has no valid key: all its rows are fully masked. Causal with Lq > Lk: the first
  // query of batch 0 sees no key either (j <= i + Lk - Lq = i - 1).
  AttentionOptions o;
  o.causal = true;
  o.key_lengths = Tensor::from_vector(std::vector<int64_t>{3, 0}, {2});
  const Tensor q = rand_input({2, 2, 4, 3}, rng), k = rand_input({2, 2, 3, 3}, rng),
               v = rand_input({2, 2, 3, 3}, rng);
  Tensor w;
  const Tensor out = scaled_dot_product_attention(q, k, v, o, &w);
  const auto rows = sum(w, {-1}).to_vector<double>();  // (B, H, Lq)
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 4; ++i) {
        const bool dead = b == 1 || i == 0;
        EXPECT_NEAR(rows[(b * 2 + h) * 4 + i], dead ? 0.0 : 1.0, 1e-12) << b << h << i;
      }
  const auto o_ = out.to_vector<double>();
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t d = 0; d < 3; ++d) {
      EXPECT_EQ(o_[((0 * 2 + h) * 4 + 0) * 3 + d], 0.0);
      for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(o_[((1 * 2 + h) * 4 + i) * 3 + d], 0.0);
    }
  // The backward through the dead rows stays finite, and they pass no gradient to q.
  sum(out).backward();
  for (double g : q.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
  for (double g : k.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
  const auto gq = q.grad().to_vector<double>();
  for (int64_t i = 0; i < 2 * 4 * 3; ++i) EXPECT_EQ(gq[2 * 4 * 3 + i], 0.0);  // batch 1
}

TEST_P(Attention, GroupedQueryEqualsRepeatedHeads) {
  Rng rng(13);
  const int64_t B = 2, H = 6, Hkv = 2, G = 3, L = 4, D = 3;
  const Tensor q = Tensor::randn({B, H, L, D}, rng), k = Tensor::randn({B, Hkv, L, D}, rng),
               v = Tensor::randn({B, Hkv, L, D}, rng);
  // Explicit repeat_interleave of K/V heads: head h reads K/V head h / G.
  Tensor kr = Tensor::empty({B, H, L, D}), vr = Tensor::empty({B, H, L, D});
  for (int64_t h = 0; h < H; ++h) {
    kr.select(1, h).copy_(k.select(1, h / G));
    vr.select(1, h).copy_(v.select(1, h / G));
  }
  AttentionOptions o;
  o.causal = true;
  const Tensor a = scaled_dot_product_attention(q, k, v, o);
  const Tensor b = scaled_dot_product_attention(q, kr, vr, o);
  EXPECT_LT(max_rel_diff(a, b), 1e-6);
  // Same with q in the (B, L, H, D)-transposed layout a multi-head projection produces.
  const Tensor qt = q.transpose(1, 2).contiguous().transpose(1, 2);
  EXPECT_FALSE(qt.is_contiguous());
  EXPECT_LT(max_rel_diff(scaled_dot_product_attention(qt, k, v, o), b), 1e-6);
}

TEST_P(Attention, DropoutUsesTheRngAndKeepsWeightsPreDropout) {
  Rng rng(14);
  const Tensor q = Tensor::randn({2, 2, 5, 4}, rng), k = Tensor::randn({2, 2, 5, 4}, rng),
               v = Tensor::randn({2, 2, 5, 4}, rng);
  Rng r1(99), r2(99);
  AttentionOptions o;
  o.dropout_p = 0.3;
  o.training = true;
  o.rng = &r1;
  Tensor w;
  const Tensor out = scaled_dot_product_attention(q, k, v, o, &w);
  // Same stream: the output is matmul(dropout(weights), v).
  const Tensor expected = matmul(dropout(w, 0.3, true, r2), v);
  EXPECT_LT(max_rel_diff(out, expected), 1e-6);
  for (double s : sum(w, {-1}).to_vector<double>()) EXPECT_NEAR(s, 1.0, 1e-6);
  // Not training: no dropout, no Rng needed.
  o.training = false;
  o.rng = nullptr;
  EXPECT_LT(max_rel_diff(scaled_dot_product_attention(q, k, v, o), matmul(w, v)), 1e-6);
}

TEST_P(Attention, GradientsForEveryMaskKind) {
  Rng rng(15);
  for (Case c : cases()) {
    SCOPED_TRACE(c.name);
    Inputs in = {rand_input({c.B, c.H, c.Lq, c.D}, rng), rand_input({c.B, c.Hkv, c.Lk, c.D}, rng),
                 rand_input({c.B, c.Hkv, c.Lk, c.D}, rng)};
    const bool with_bias = std::string(c.name) == "bias" || std::string(c.name) == "all_masks_gqa";
    if (with_bias) in.push_back(rand_input({1, c.H, c.Lq, c.Lk}, rng));  // broadcast over B
    const AttentionOptions base = c.opt;
    EXPECT_TRUE(gradcheck(
        [&](const Inputs& x) {
          AttentionOptions o = base;
          if (x.size() > 3) o.bias = x[3];
          Tensor w;
          const Tensor out = scaled_dot_product_attention(x[0], x[1], x[2], o, &w);
          // Check the weights' gradient path too: out + (sum over keys of w * 0.5) broadcast.
          return out + unsqueeze(sum(w, {-1}), -1) * 0.5;
        },
        in));
  }
}

TEST_P(Attention, InputChecks) {
  const Tensor q = Tensor::zeros({2, 4, 3, 8}), k = Tensor::zeros({2, 2, 5, 8}),
               v = Tensor::zeros({2, 2, 5, 8});
  EXPECT_THROW(scaled_dot_product_attention(q.select(0, 0), k, v), ShapeError);  // 3-D
  EXPECT_THROW(
      scaled_dot_product_attention(q, Tensor::zeros({2, 3, 5, 8}), Tensor::zeros({2, 3, 5, 8})),
      ShapeError);  // 4 % 3
  EXPECT_THROW(scaled_dot_product_attention(q, Tensor::zeros({2, 2, 5, 7}), v), ShapeError);  // D
  EXPECT_THROW(scaled_dot_product_attention(q, k, Tensor::zeros({2, 2, 4, 8})), ShapeError);  // Lk
  EXPECT_THROW(scaled_dot_product_attention(q, k.to(DType::F64), v), DTypeError);
  AttentionOptions o;
  o.key_lengths = Tensor::from_vector(std::vector<int64_t>{5, 6}, {2});  // 6 > Lk
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, o), ValueError);
  o.key_lengths = Tensor::from_vector(std::vector<int64_t>{5}, {1});  // B mismatch
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, o), ShapeError);
  o = {};
  o.key_padding_mask = Tensor::zeros({2, 4});
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, o), ShapeError);
  o = {};
  o.bias = Tensor::zeros({3, 5});  // (Lq, Lk) broadcasts
  EXPECT_NO_THROW(scaled_dot_product_attention(q, k, v, o));
  o.bias = Tensor::zeros({2, 5});  // Lq mismatch
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, o), ShapeError);
  o = {};
  o.training = true;
  o.dropout_p = 0.1;  // no Rng
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, o), ValueError);
  Rng rng(1);
  o.rng = &rng;
  o.dropout_p = 1.0;
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, o), ValueError);
}
