// Golden tests of MultiHeadAttention against torch.nn.MultiheadAttention (PyTorch 1.13,
// batch_first, packed in_proj split into q/k/v_proj by the fixture script): self-attention
// (output, head-averaged and per-head weights), a causal mask (as the causal flag and as an
// additive -inf bias built from torch's bool mask), a key-padding mask, and cross attention
// (Lq != Lk, key = value = memory). Outputs and every gradient compared by name.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "focus/nn/attention.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/tensor/rng.hpp"
#include "golden/golden.hpp"

using namespace focus;
using golden::Fixture;

namespace {

// torch's bool attn_mask (1 = masked) as an additive bias: -inf where masked, 0 elsewhere.
Tensor mask_to_bias(const Tensor& mask, DType dtype) {
  std::vector<double> bias;
  for (int64_t m : mask.to_vector<int64_t>()) bias.push_back(m ? -INFINITY : 0.0);
  return Tensor::from_vector(bias, mask.shape()).to(dtype);  // (Lq, Lk)
}

// Runs one case; `mask` is built by the caller from the fixture.
void check_mha(const Fixture& fx, const AttentionMask& mask) {
  Rng rng(3);
  MultiHeadAttentionOptions opt;
  opt.d_model = fx.meta_int("embed_dim");
  opt.n_heads = fx.meta_int("num_heads");
  MultiHeadAttention mha(opt, rng);
  mha.to(fx.dtype());
  fx.load_into(mha);
  const bool cross = fx.has("memory");
  Tensor q = fx.input(cross ? "query" : "input");              // (B, Lq, E)
  Tensor kv = cross ? fx.input("memory") : Tensor();           // (B, Lk, E) or self
  Tensor w;                                                    // (B, H, Lq, Lk)
  Tensor y = mha.forward(q, kv, mask, &w);                     // (B, Lq, E)
  EXPECT_TRUE(golden::matches(fx, "output", y));
  EXPECT_TRUE(golden::matches(fx, "attn_weights", mean(w, {1})));  // (B, Lq, Lk)
  if (fx.has("attn_weights_per_head")) {
    EXPECT_TRUE(golden::matches(fx, "attn_weights_per_head", w));
  }
  y.backward(fx.at("grad_output"));
  if (cross)
    golden::expect_gradients(fx, mha, {{"query", q}, {"memory", kv}});
  else
    golden::expect_gradients(fx, mha, {{"input", q}});
}

}  // namespace

TEST(GoldenMultiHeadAttention, SelfF64) { check_mha(Fixture("mha_self_f64"), {}); }
TEST(GoldenMultiHeadAttention, SelfF32) { check_mha(Fixture("mha_self_f32"), {}); }

TEST(GoldenMultiHeadAttention, CausalFlag) {
  const Fixture fx("mha_causal_f64");
  AttentionMask mask;
  mask.causal = true;
  check_mha(fx, mask);
}

TEST(GoldenMultiHeadAttention, CausalAsBias) {
  const Fixture fx("mha_causal_f64");
  AttentionMask mask;
  mask.bias = mask_to_bias(fx.at("attn_mask"), fx.dtype());  // (L, L)
  check_mha(fx, mask);
}

TEST(GoldenMultiHeadAttention, KeyPadding) {
  const Fixture fx("mha_padding_f64");
  AttentionMask mask;
  mask.key_padding_mask = fx.at("key_padding_mask");  // (B, L) I64, 1 = padding
  check_mha(fx, mask);
}

TEST(GoldenMultiHeadAttention, Cross) { check_mha(Fixture("mha_cross_f64"), {}); }
