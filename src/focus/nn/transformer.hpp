// Pre-norm Transformer encoder layer with a GELU feed-forward, as
// torch.nn.TransformerEncoderLayer(norm_first=True, activation="gelu", batch_first=True):
//   x = x + dropout1(self_attn(norm1(x)))
//   x = x + dropout2(linear2(dropout(gelu(linear1(norm2(x))))))
//   Letters: B batch, L sequence, E = d_model, F = d_ff.
#pragma once
#include <memory>

#include "focus/nn/attention.hpp"
#include "focus/nn/dropout.hpp"
#include "focus/nn/linear.hpp"
#include "focus/nn/norm.hpp"

namespace focus {

struct TransformerEncoderLayerOptions {
  int64_t d_model = 0;
  int64_t n_heads = 1;
  int64_t n_kv_heads = 0;  // 0: n_heads
  int64_t d_ff = 0;
  double dropout = 0.0;       // residual branches and inside the feed-forward
  double attn_dropout = 0.0;  // on the attention probabilities
  bool bias = true;
  double norm_eps = 1e-5;
};

class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(const TransformerEncoderLayerOptions& opt, Rng& rng);
  // x (B, L, E) -> (B, L, E); weights_out receives the attention probabilities (B, H, L, L).
  Tensor forward(const Tensor& x, const AttentionMask& mask = {}, Tensor* weights_out = nullptr);

  const std::shared_ptr<LayerNorm> norm1;
  const std::shared_ptr<MultiHeadAttention> self_attn;
  const std::shared_ptr<LayerNorm> norm2;
  const std::shared_ptr<Linear> linear1, linear2;  // E -> F, F -> E

 private:
  std::shared_ptr<Dropout> dropout1_, dropout_, dropout2_;
};

}  // namespace focus
