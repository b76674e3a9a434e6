// text-transformer: a text classifier over token ids.
//   tokens: Embedding(vocab, D) + learned positions (max_len), dropout
//   depth x pre-norm TransformerEncoderLayer (GELU MLP of width mlp_ratio * D), every attention
//     masked with the padding (id 0 = Vocab::kPad), final LayerNorm
//   pooling: AttentionPooling, a learned query attending over the tokens with the padding mask;
//     its weights (head-averaged) are the model's first explanation (pooling_weights)
//   head: Linear D -> classes.
// Padding: a padded position is never attended to, and every other computation is per token, so
// a sequence's logits do not depend on how much padding follows it (or where it is). Inputs are
// (N, L) I64 with L <= max_len; every row must hold at least one non-padding id (ValueError).
// Letters: N batch, L tokens, D = dim, H heads, V vocabulary.
// Parameter names: tok_embed.weight, pos_embed.weight, blocks.{i}.*, norm.*, pool.*, head.*.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/models/classifier.hpp"

namespace focus {

class AttentionPooling;
struct AttentionMask;
class Dropout;
class Embedding;
class LayerNorm;
class LearnedPositionalEncoding;
class Linear;
class TransformerEncoderLayer;

struct TextTransformerConfig {
  int64_t vocab_size = 1000;
  int64_t max_len = 128;
  int64_t num_classes = 2;
  int64_t dim = 64;
  int64_t depth = 2;
  int64_t heads = 4;
  double mlp_ratio = 2.0;
  double dropout = 0.1;       // after the positions, in residual branches and the MLP
  double attn_dropout = 0.0;  // on attention probabilities (encoder and pooling)

  static TextTransformerConfig from_json(const nlohmann::json& j);  // ValueError on bad keys/values
  nlohmann::json to_json() const;
};

// The encoder the text models share (text_transformer; text_mlm, models/text_mlm.hpp): the token
// embedding, the learned positions, dropout, the blocks and the final LayerNorm, registered
// first and under the same names in both, so a pretrained encoder's tensors load into the
// classifier by name (and a seed gives the classifier the weights it always had).
class TextEncoderModel : public Classifier {
 public:
  const TextTransformerConfig& cfg() const { return cfg_; }
  std::string input_kind() const override { return "text"; }
  // The encoder's output (N, L, D) after the final LayerNorm.
  Tensor encode(const Tensor& ids);
  // The token embedding table (V, D) (tied MLM output, gradient x input).
  Embedding& token_embedding() { return *tok_embed_; }
  // True for a parameter name the encoder owns: tok_embed.*, pos_embed.*, blocks.*, norm.*.
  static bool is_encoder_parameter(const std::string& name);

 protected:
  TextEncoderModel(const TextTransformerConfig& cfg, Rng& rng);
  // Checks ids (N, L) I64 (1 <= L <= max_len, ids in [0, vocab), no all-padding row: ShapeError /
  // ValueError), sets am's padding mask and runs the encoder; `maps` (optional) receives each
  // block's attention map (N, H, L, L). `embedded` (optional) receives the token embeddings
  // (N, L, D) before the positions, attached to the graph (gradient x input).
  Tensor run_encoder(const Tensor& ids, AttentionMask& am, std::vector<Tensor>* maps,
                     Tensor* embedded = nullptr);
  TextTransformerConfig cfg_;

 private:
  std::shared_ptr<Embedding> tok_embed_;
  std::shared_ptr<LearnedPositionalEncoding> pos_embed_;
  std::shared_ptr<Dropout> dropout_;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> blocks_;
  std::shared_ptr<LayerNorm> norm_;
};

class TextTransformer : public TextEncoderModel {
 public:
  TextTransformer(const TextTransformerConfig& cfg, Rng& rng);
  Tensor forward(const Tensor& ids) override;  // (N, L) I64 -> (N, classes)
  // Records depth maps (N, H, L, L) in trace.attention, then the pooling query's map
  // (N, H, 1, L) (zero on padding).
  Tensor forward_traced(const Tensor& ids, ForwardTrace& trace) override;
  // The pooling weights averaged over heads: (N, L), each row summing to 1 over its tokens and
  // 0 on padding. Runs a forward in the model's current mode.
  Tensor pooling_weights(const Tensor& ids);
  // Logits (N, classes) and the token embeddings (N, L, D) they were computed from, attached to
  // the graph (gradient x input: d logit / d embedded).
  Tensor forward_embedded(const Tensor& ids, Tensor& embedded);
  nlohmann::json config() const override;
  std::string name() const override { return "text_transformer"; }

  // The pooling layer alone (tests: gradient checks of the pooling over given features).
  AttentionPooling& pool() { return *pool_; }

 private:
  Tensor run(const Tensor& ids, std::vector<Tensor>* maps, Tensor* embedded = nullptr);
  std::shared_ptr<AttentionPooling> pool_;
  std::shared_ptr<Linear> head_;
};

// The padding mask of token ids (N, L) I64: (N, L) F32, 1 where the id is Vocab::kPad (0).
Tensor padding_mask(const Tensor& ids);

}  // namespace focus
