// MultiHeadAttention (self or cross, grouped-query when n_kv_heads < n_heads) and
// AttentionPooling (a learned query attending over a sequence), on top of
// scaled_dot_product_attention (ops/attention.hpp). Parameter names in docs/DESIGN.md.
//   Letters: B batch, Lq queries, Lk keys, E = d_model, H heads, Hkv K/V heads, Dh = E / H.
#pragma once
#include <memory>

#include "focus/nn/linear.hpp"
#include "focus/nn/module.hpp"
#include "focus/ops/attention.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

struct MultiHeadAttentionOptions {
  int64_t d_model = 0;
  int64_t n_heads = 1;
  int64_t n_kv_heads = 0;  // 0: n_heads; else must divide n_heads
  bool bias = true;
  double dropout = 0.0;  // on the attention probabilities, in training
};

class MultiHeadAttention : public Module {
  MultiHeadAttentionOptions opt_;  // first: the projections are sized from it

 public:
  // q/k/v projections Xavier-uniform, out_proj torch's Linear init; all biases zero (as torch).
  MultiHeadAttention(const MultiHeadAttentionOptions& opt, Rng& rng);
  // query (B, Lq, E), key_value (B, Lk, E) or undefined for self-attention -> (B, Lq, E).
  // weights_out, if given, receives the per-head probabilities (B, H, Lq, Lk).
  Tensor forward(const Tensor& query, const Tensor& key_value = Tensor(),
                 const AttentionMask& mask = {}, Tensor* weights_out = nullptr);
  const MultiHeadAttentionOptions& options() const { return opt_; }

  const std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;

 private:
  Rng rng_;  // attention dropout masks
};

class AttentionPooling : public Module {
 public:
  // query (1, 1, E) ~ N(0, 0.02^2); attn as MultiHeadAttention(opt).
  AttentionPooling(const MultiHeadAttentionOptions& opt, Rng& rng);
  // x (B, L, E) -> (B, E); weights_out receives (B, H, 1, L).
  Tensor forward(const Tensor& x, const AttentionMask& mask = {}, Tensor* weights_out = nullptr);

  const Tensor query;  // (1, 1, E)
  const std::shared_ptr<MultiHeadAttention> attn;
};

}  // namespace focus
