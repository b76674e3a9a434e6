// Pre-norm Transformer layers with a GELU feed-forward, as PyTorch's (norm_first=True,
// activation="gelu", batch_first=True).
// TransformerEncoderLayer (torch.nn.TransformerEncoderLayer):
//   x = x + dropout1(self_attn(norm1(x)))
//   x = x + dropout2(linear2(dropout(gelu(linear1(norm2(x))))))
// With a causal mask a stack of these is a decoder-only language model; forward_cached decodes it
// incrementally over a KvCache (inference).
// TransformerDecoderLayer (torch.nn.TransformerDecoderLayer; torch names cross_attn
// `multihead_attn`):
//   x = x + dropout1(self_attn(norm1(x)))             causal (or any mask) over the target
//   x = x + dropout2(cross_attn(norm2(x), memory))    memory: the encoder output
//   x = x + dropout3(linear2(dropout(gelu(linear1(norm3(x))))))
// forward_cached decodes it over a KvCache (self) and a CrossKvCache (memory K/V projected once).
//   Letters: B batch, L sequence, S source (memory) length, E = d_model, F = d_ff,
//   T new tokens of a decoding step.
#pragma once
#include <memory>

#include "focus/nn/attention.hpp"
#include "focus/nn/dropout.hpp"
#include "focus/nn/linear.hpp"
#include "focus/nn/norm.hpp"

namespace focus {

// Sizes of an encoder or decoder layer (both attentions of a decoder layer share them).
struct TransformerLayerOptions {
  int64_t d_model = 0;
  int64_t n_heads = 1;
  int64_t n_kv_heads = 0;  // 0: n_heads
  int64_t d_ff = 0;
  double dropout = 0.0;       // residual branches and inside the feed-forward
  double attn_dropout = 0.0;  // on the attention probabilities
  bool bias = true;
  double norm_eps = 1e-5;
  int64_t head_dim = 0;  // 0: d_model / n_heads; else fixed (a layer with pruned heads)
};
using TransformerEncoderLayerOptions = TransformerLayerOptions;
using TransformerDecoderLayerOptions = TransformerLayerOptions;

class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(const TransformerEncoderLayerOptions& opt, Rng& rng);
  // x (B, L, E) -> (B, L, E); weights_out receives the attention probabilities (B, H, L, L).
  Tensor forward(const Tensor& x, const AttentionMask& mask = {}, Tensor* weights_out = nullptr);
  // Causal self-attention decoding: x (B, T, E) are the next T positions of each sequence, whose
  // K/V join `cache` (counts as KvCache::append) -> (B, T, E). Equals forward() with a causal
  // mask over the whole sequence, row for row. Inference: StateError in training with dropout.
  Tensor forward_cached(const Tensor& x, KvCache& cache, const Tensor& counts = Tensor());
  KvCache make_cache(int64_t batch, int64_t capacity = 64) const {
    return self_attn->make_cache(batch, capacity);
  }

  const std::shared_ptr<LayerNorm> norm1;
  const std::shared_ptr<MultiHeadAttention> self_attn;
  const std::shared_ptr<LayerNorm> norm2;
  const std::shared_ptr<Linear> linear1, linear2;  // E -> F, F -> E

 private:
  std::shared_ptr<Dropout> dropout1_, dropout_, dropout2_;
};

class TransformerDecoderLayer : public Module {
 public:
  TransformerDecoderLayer(const TransformerDecoderLayerOptions& opt, Rng& rng);
  // x (B, L, E), memory (B, S, E) -> (B, L, E). self_mask: usually causal (targets right-padded:
  // the causal mask alone keeps real rows off the padding); memory_mask: the source padding
  // (key_lengths / key_padding_mask). weights_out: cross-attention probabilities (B, H, L, S).
  Tensor forward(const Tensor& x, const Tensor& memory, const AttentionMask& self_mask,
                 const AttentionMask& memory_mask, Tensor* cross_weights_out = nullptr,
                 Tensor* self_weights_out = nullptr);
  // Projects memory (B, S, E) into `cross` once per source batch (inference).
  void cache_memory(const Tensor& memory, CrossKvCache& cross,
                    const AttentionMask& memory_mask = {}) {
    cross_attn->cache_memory(memory, cross, memory_mask);
  }
  // The next T target positions (B, T, E) -> (B, T, E), their self-attention K/V joining `self`
  // (counts as KvCache::append); equals forward() with a causal self mask, row for row.
  Tensor forward_cached(const Tensor& x, KvCache& self, const CrossKvCache& cross,
                        const Tensor& counts = Tensor());
  KvCache make_cache(int64_t batch, int64_t capacity = 64) const {
    return self_attn->make_cache(batch, capacity);
  }

  const std::shared_ptr<LayerNorm> norm1;
  const std::shared_ptr<MultiHeadAttention> self_attn;
  const std::shared_ptr<LayerNorm> norm2;
  const std::shared_ptr<MultiHeadAttention> cross_attn;
  const std::shared_ptr<LayerNorm> norm3;
  const std::shared_ptr<Linear> linear1, linear2;  // E -> F, F -> E

 private:
  std::shared_ptr<Dropout> dropout1_, dropout2_, dropout3_, dropout_;
};

}  // namespace focus
