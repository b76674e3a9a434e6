// Pre-norm Transformer encoder and decoder layers (see transformer.hpp).
#include "focus/nn/transformer.hpp"

#include "focus/nn/init.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/unary.hpp"

namespace focus {

namespace {
MultiHeadAttentionOptions attention_options(const TransformerLayerOptions& o) {
  return {o.d_model, o.n_heads, o.n_kv_heads, o.bias, o.attn_dropout, o.head_dim};
}
}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerEncoderLayerOptions& o, Rng& rng)
    : norm1(register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.norm_eps))),
      self_attn(register_module(
          "self_attn",
          std::make_shared<MultiHeadAttention>(attention_options(o), rng))),
      norm2(register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.norm_eps))),
      linear1(register_module(
          "linear1",
          std::make_shared<Linear>(o.d_model, init::positive(o.d_ff, "d_ff"), rng, o.bias))),
      linear2(register_module("linear2", std::make_shared<Linear>(o.d_ff, o.d_model, rng, o.bias))),
      dropout1_(register_module("dropout1", std::make_shared<Dropout>(o.dropout, rng))),
      dropout_(register_module("dropout", std::make_shared<Dropout>(o.dropout, rng))),
      dropout2_(register_module("dropout2", std::make_shared<Dropout>(o.dropout, rng))) {}

Tensor TransformerEncoderLayer::forward(const Tensor& x, const AttentionMask& mask,
                                        Tensor* weights_out) {
  Tensor h = add(x, dropout1_->forward(self_attn->forward(norm1->forward(x), Tensor(), mask,
                                                          weights_out)));  // (B, L, E)
  const Tensor f = gelu(linear1->forward(norm2->forward(h)));              // (B, L, F)
  return add(h, dropout2_->forward(linear2->forward(dropout_->forward(f))));
}

Tensor TransformerEncoderLayer::forward_cached(const Tensor& x, KvCache& cache,
                                               const Tensor& counts) {
  FOCUS_CHECK(!(is_training() && dropout_->p() > 0.0), StateError,
              "TransformerEncoderLayer::forward_cached: decoding applies no dropout; call eval() "
              "(dropout {})", dropout_->p());
  Tensor h = add(x, self_attn->forward_cached(norm1->forward(x), cache, counts));  // (B, T, E)
  const Tensor f = gelu(linear1->forward(norm2->forward(h)));                     // (B, T, F)
  return add(h, linear2->forward(f));
}

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerDecoderLayerOptions& o, Rng& rng)
    : norm1(register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.norm_eps))),
      self_attn(register_module(
          "self_attn", std::make_shared<MultiHeadAttention>(attention_options(o), rng))),
      norm2(register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.norm_eps))),
      cross_attn(register_module(
          "cross_attn", std::make_shared<MultiHeadAttention>(attention_options(o), rng))),
      norm3(register_module("norm3", std::make_shared<LayerNorm>(o.d_model, o.norm_eps))),
      linear1(register_module(
          "linear1",
          std::make_shared<Linear>(o.d_model, init::positive(o.d_ff, "d_ff"), rng, o.bias))),
      linear2(register_module("linear2", std::make_shared<Linear>(o.d_ff, o.d_model, rng, o.bias))),
      dropout1_(register_module("dropout1", std::make_shared<Dropout>(o.dropout, rng))),
      dropout2_(register_module("dropout2", std::make_shared<Dropout>(o.dropout, rng))),
      dropout3_(register_module("dropout3", std::make_shared<Dropout>(o.dropout, rng))),
      dropout_(register_module("dropout", std::make_shared<Dropout>(o.dropout, rng))) {}

Tensor TransformerDecoderLayer::forward(const Tensor& x, const Tensor& memory,
                                        const AttentionMask& self_mask,
                                        const AttentionMask& memory_mask,
                                        Tensor* cross_weights_out, Tensor* self_weights_out) {
  Tensor h = add(x, dropout1_->forward(self_attn->forward(norm1->forward(x), Tensor(), self_mask,
                                                          self_weights_out)));  // (B, L, E)
  h = add(h, dropout2_->forward(
                 cross_attn->forward(norm2->forward(h), memory, memory_mask, cross_weights_out)));
  const Tensor f = gelu(linear1->forward(norm3->forward(h)));  // (B, L, F)
  return add(h, dropout3_->forward(linear2->forward(dropout_->forward(f))));
}

Tensor TransformerDecoderLayer::forward_cached(const Tensor& x, KvCache& self,
                                               const CrossKvCache& cross, const Tensor& counts) {
  FOCUS_CHECK(!(is_training() && dropout_->p() > 0.0), StateError,
              "TransformerDecoderLayer::forward_cached: decoding applies no dropout; call eval() "
              "(dropout {})", dropout_->p());
  Tensor h = add(x, self_attn->forward_cached(norm1->forward(x), self, counts));  // (B, T, E)
  h = add(h, cross_attn->forward_cross_cached(norm2->forward(h), cross));
  const Tensor f = gelu(linear1->forward(norm3->forward(h)));  // (B, T, F)
  return add(h, linear2->forward(f));
}

}  // namespace focus
