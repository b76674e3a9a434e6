// MultiHeadAttention (self or cross, grouped-query when n_kv_heads < n_heads) and
// AttentionPooling (a learned query attending over a sequence), on top of
// scaled_dot_product_attention (ops/attention.hpp). Parameter names in docs/DESIGN.md.
// MultiHeadAttention also decodes incrementally (inference only) over a KvCache (self-attention)
// or a CrossKvCache (encoder K/V projected once), see nn/kv_cache.hpp.
// Pruned heads (Michel et al. 2019, models/head_pruning.hpp): options.head_dim fixes Dh, so a
// layer may keep fewer heads than E / Dh; the projections are then E -> H Dh (q), E -> Hkv Dh
// (k, v) and H Dh -> E (out). A head gate (set_head_gate) scales each head's output before out_proj
// (a gate at zero removes the head; its gradient is the head's importance).
//   Letters: B batch, Lq queries, Lk keys, E = d_model, H heads, Hkv K/V heads, Dh = E / H or head_dim,
//   T new tokens of a decoding step, S source (encoder) length.
#pragma once
#include <memory>

#include "focus/nn/kv_cache.hpp"
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
  int64_t head_dim = 0;  // 0: d_model / n_heads (which must divide); else any positive Dh
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
  const MultiHeadAttentionOptions& options() const { return opt_; }  // head_dim resolved
  // A gate per head, (H) in the parameters' dtype, multiplying head h's output (undefined: none).
  // It may require grad (head importance, models/head_pruning.hpp). ShapeError for another shape.
  void set_head_gate(const Tensor& gate);
  const Tensor& head_gate() const { return gate_; }

  // ---- incremental decoding (no dropout: throws StateError in training mode with dropout) ----
  // An empty self-attention cache sized for this layer, in its parameters' dtype.
  KvCache make_cache(int64_t batch, int64_t capacity = 64) const;
  // Self-attention of the next T tokens: query (B, T, E) -> (B, T, E). Their K/V are appended to
  // `cache` (counts as KvCache::append: valid new tokens per sequence, default all T); query i of
  // sequence b sees the sequence's cached keys and new keys 0..i. Equals forward() with a causal
  // mask over the whole sequence, row for row.
  Tensor forward_cached(const Tensor& query, KvCache& cache, const Tensor& counts = Tensor());
  // Cross-attention with the encoder's K/V computed once: cache_memory projects memory (B, S, E)
  // into `cache` (memory_mask: its key_lengths / key_padding_mask, the source padding);
  // forward_cross_cached attends query (B, T, E) to it -> (B, T, E), as forward(query, memory).
  void cache_memory(const Tensor& memory, CrossKvCache& cache,
                    const AttentionMask& memory_mask = {});
  Tensor forward_cross_cached(const Tensor& query, const CrossKvCache& cache);

  const std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;

 private:
  // (B, H, T, Dh) attention output -> out_proj -> (B, T, E).
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                Tensor* weights_out);
  void check_query(const Tensor& query, int64_t batch, const char* where) const;
  Rng rng_;  // attention dropout masks
  Tensor gate_;  // (H) or undefined
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
