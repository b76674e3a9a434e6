// text-mlm: the text-transformer encoder with a masked-token head, for pretraining on unlabelled
// text (train/pretrain.hpp, `focus pretrain`). The encoder's parameters carry the classifier's
// names (TextEncoderModel: tok_embed.*, pos_embed.*, blocks.*, norm.*), so `--init FILE` copies
// them into a text_transformer by name; the head is dropped at fine-tuning.
//   head: Linear D -> D, GELU, LayerNorm, then the tied projection onto the token embedding
//         (h @ tok_embed.weight^T / sqrt(D)) plus a per-token bias (mlm_bias, V), as BERT's.
// Targets: (N, L) I64, the original token at the positions to predict and kIgnore (-100)
// elsewhere; forward_scored keeps only the predicted positions, so the loss and the accuracy the
// trainer computes are the masked-token ones.
// Parameter names: the encoder's, mlm_dense.*, mlm_norm.*, mlm_bias.
#pragma once
#include <memory>
#include <utility>

#include "focus/models/text_transformer.hpp"

namespace focus {

class TextMlm : public TextEncoderModel {
 public:
  static constexpr int64_t kIgnore = -100;
  // cfg.num_classes is unused (the outputs are the vocabulary).
  TextMlm(const TextTransformerConfig& cfg, Rng& rng);
  Tensor forward(const Tensor& ids) override;  // (N, L) I64 -> (N, L, V) logits at every position
  // (N, L) ids and (N, L) targets -> the (M, V) logits of the M positions whose target is not
  // kIgnore (row-major order) and their (M) targets. ShapeError when the shapes differ.
  std::pair<Tensor, Tensor> forward_scored(const Tensor& ids, const Tensor& targets) override;
  nlohmann::json config() const override;
  std::string name() const override { return "text_mlm"; }

 private:
  Tensor head(const Tensor& h);  // (..., D) -> (..., V)
  std::shared_ptr<Linear> dense_;
  std::shared_ptr<LayerNorm> norm_;
  Tensor bias_;  // (V)
};

}  // namespace focus
