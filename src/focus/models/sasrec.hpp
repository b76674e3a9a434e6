// sasrec: a SASRec-style sequential recommender (Kang and McAuley, ICDM 2018) over item ids.
//   items: Embedding(V, D) (index 0 = padding; N(0, 1/D)) + learned positions (max_len), dropout
//   depth x pre-norm TransformerEncoderLayer with a causal mask (GELU MLP of width
//     mlp_ratio * D), final LayerNorm
//   output: the item embedding shared with the output, scores = h @ items^T (V per position).
// Inputs are (N, L) I64 histories, oldest first, right-padded with 0, L <= max_len, each row
// holding at least one item. The causal mask keeps every item position from seeing the padding
// that follows it, so no padding mask is needed and a row's scores do not depend on its padding.
// forward: (N, V) scores of the item after each row's last item (the Classifier contract: the
//   model file, the trainer's validation and serving use it).
// forward_scored: y (N) (the trainer's validation): forward(x) and y. In training every
//   position's next item at once, as SASRec trains: y (N, L) holds the
//   next item of each position (-100 on padding); only those rows are projected ((M, V) logits
//   and (M) targets, M the non-padding positions), the full softmax over every item. With
//   negatives = k > 0 (in training mode) each target is scored against k items drawn uniformly
//   from 1..V-1 instead (a draw equal to the target is replaced by the next item): (M, 1 + k)
//   logits, the target first (targets all 0); uniform draws need no log-q correction. The draws
//   come from the model's random stream "negatives.rng" (checkpointed, counter-based as dropout's).
// Letters: N batch, L positions, D = dim, H heads, V items (padding included), M targets.
// Parameter names: items.weight, pos.weight, blocks.{i}.*, norm.*.
#pragma once
#include <memory>
#include <vector>

#include "focus/models/classifier.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

class Dropout;
class Embedding;
class LayerNorm;
class LearnedPositionalEncoding;
class TransformerEncoderLayer;

struct SasRecConfig {
  int64_t num_items = 1000;  // V, padding included
  int64_t max_len = 50;
  int64_t dim = 64;
  int64_t depth = 2;
  int64_t heads = 2;
  double mlp_ratio = 1.0;
  double dropout = 0.2;
  int64_t negatives = 0;  // 0: full softmax in training; k: k sampled negatives per target

  static SasRecConfig from_json(const nlohmann::json& j);  // ValueError on bad keys/values
  nlohmann::json to_json() const;
};

class SasRec : public Classifier {
 public:
  SasRec(const SasRecConfig& cfg, Rng& rng);
  Tensor forward(const Tensor& ids) override;  // (N, L) I64 -> (N, V)
  std::pair<Tensor, Tensor> forward_scored(const Tensor& ids, const Tensor& next) override;
  Tensor hidden(const Tensor& ids);  // (N, L) I64 -> (N, L, D)
  nlohmann::json config() const override;
  std::string name() const override { return "sasrec"; }
  std::string input_kind() const override { return "items"; }
  const SasRecConfig& cfg() const { return cfg_; }

 private:
  SasRecConfig cfg_;
  std::shared_ptr<Embedding> items_;
  std::shared_ptr<LearnedPositionalEncoding> pos_;
  std::shared_ptr<Dropout> dropout_;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> blocks_;
  std::shared_ptr<LayerNorm> norm_;
  Rng neg_rng_;
};

}  // namespace focus
