// Reference scaled-dot-product attention, built from differentiable primitives (matmul, add,
// softmax, dropout, mul). It materialises the (B, H, Lq, Lk) scores, so memory grows with
// Lq * Lk. The issue "fused attention" will add a fused (flash-style) kernel; this function stays
// as its oracle in tests and as the path that can return the attention probabilities.
//   Letters: B batch, H query heads, Hkv key/value heads (H % Hkv == 0; query head h uses K/V
//   head h / (H / Hkv), as torch's repeat_interleave), Lq queries, Lk keys, D head dim, Dv value
//   head dim (usually D). F32 and F64.
#pragma once
#include <optional>

#include "focus/tensor/tensor.hpp"

namespace focus {

class Rng;

// Which scores take part. Masked scores are set to -inf before the softmax; a query row with no
// key left gives zero probabilities (and a zero output), never NaN.
struct AttentionMask {
  // Query i sees keys j <= i + (Lk - Lq) (the last query sees every key).
  bool causal = false;
  // I64 or I32 (B): keys j >= key_lengths[b] are masked; each length in [0, Lk].
  Tensor key_lengths;
  // (B, Lk), any dtype: nonzero marks a padding key (masked), as torch.nn.MultiheadAttention's
  // key_padding_mask.
  Tensor key_padding_mask;
  // Additive, broadcastable to (B, H, Lq, Lk), same dtype as q; differentiable. Keep it finite:
  // -inf entries are allowed, but a row of only -inf bias is not caught (it gives NaN as in torch).
  Tensor bias;
};

struct AttentionOptions : AttentionMask {
  std::optional<double> scale;  // default 1 / sqrt(D)
  double dropout_p = 0.0;       // on the probabilities, only when training
  bool training = false;
  Rng* rng = nullptr;  // required when training with dropout_p > 0
};

// q (B, H, Lq, D), k (B, Hkv, Lk, D), v (B, Hkv, Lk, Dv) -> (B, H, Lq, Dv). If weights_out is
// given it receives the (B, H, Lq, Lk) probabilities after masking and before dropout (still
// attached to the graph). Throws ShapeError / DTypeError / ValueError on bad inputs.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt = {},
                                    Tensor* weights_out = nullptr);

}  // namespace focus
