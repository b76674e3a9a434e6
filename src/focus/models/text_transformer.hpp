// text-transformer: a text classifier over token ids.
//   tokens: Embedding(vocab, D) + learned positions (max_len), dropout
//   depth x pre-norm TransformerEncoderLayer (GELU MLP of width mlp_ratio * D), every attention
//     masked with the padding (id 0 = Vocab::kPad), final LayerNorm
//   pooling: AttentionPooling, a learned query attending over the tokens with the padding mask;
//     its weights (head-averaged) are the model's first explanation (pooling_weights)
//   head: Linear D -> classes.
//   n-gram branch ("wide & deep", fastText-style; off when ngram_buckets = 0, the default): every
//     n-gram of orders 1..ngram_order of consecutive non-padding ids is hashed
//     (text_ngram_bucket) into one of ngram_buckets rows of a table (buckets, classes), zero at
//     initialisation; ngram_scale x the sum of the row's n-grams' rows / sqrt(their count) is
//     added to the head's logits (as an L2-normalised bag of n-grams; a plain mean measured 1.0
//     points under it on sentiment, docs/RESULTS.md). It is what lets a bag of words reach TF-IDF
//     + LR's figures, trained jointly with the encoder. Under Adam(W) the scale is the table's
//     learning-rate multiplier (a parameter's update does not depend on its gradient's scale) and
//     divides the weight decay's pull in logit units: at scale 1, decoupled decay 0.5 keeps
//     every row too small to matter.
//   NB-weighted n-grams (NBSVM, Wang & Manning 2012; on when ngram_nb = alpha > 0): each slot's
//     table row is multiplied elementwise by a fixed row of log-count ratios (buffer
//     ngram_nb_ratio (buckets, classes), text_ngram_nb_ratios) learned from the training rows by
//     fit_ngram_nb before training: logit_k += scale x sum_s w_s r[b_s, k] T[b_s, k]. The ratios
//     are data, not parameters: no gradient, no weight decay; they are saved in the model file.
// Padding: a padded position is never attended to, and every other computation is per token, so
// a sequence's logits do not depend on how much padding follows it (or where it is). Inputs are
// (N, L) I64 with L <= max_len; every row must hold at least one non-padding id (ValueError).
// Letters: N batch, L tokens, D = dim, H heads, V vocabulary.
// Parameter names: tok_embed.weight, pos_embed.weight, blocks.{i}.*, norm.*, pool.*, head.*,
// ngram_table (only with ngram_buckets > 0: files without it load unchanged); the buffer
// ngram_nb_ratio (only with ngram_nb > 0).
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
  int64_t ngram_buckets = 0;  // rows of the n-gram branch's hashed table; 0: no branch
  int64_t ngram_order = 2;    // n-grams of orders 1..ngram_order (1 to 4)
  double ngram_scale = 1.0;   // the branch's logits = ngram_scale x sum / sqrt(count) (> 0)
  double ngram_nb = 0.0;      // NB weighting's smoothing alpha (> 0: on; needs ngram_buckets > 0)

  static TextTransformerConfig from_json(const nlohmann::json& j);  // ValueError on bad keys/values
  // The n-gram keys are written only when the branch is on (files without it stay as they were).
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
  // run_encoder's checks of ids (the same errors); the padding mask (N, L) they are made on.
  Tensor checked_padding_mask(const Tensor& ids) const;
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
  // The n-gram branch's logits (N, classes) for ids (N, L) I64 (the model's checks); zeros when
  // the branch is off. forward() = the head's logits + these.
  Tensor ngram_logits(const Tensor& ids);
  // The n-gram table (ngram_buckets, classes); undefined when the branch is off.
  const Tensor& ngram_table() const { return ngram_; }
  // The NB log-count ratios (ngram_buckets, classes); undefined unless ngram_nb > 0.
  const Tensor& ngram_nb_ratio() const { return nb_; }
  // What the branch multiplies each slot's weight by, detached, F64 (ngram_buckets, classes):
  // the table, times the NB ratios when on; undefined when the branch is off (explain, fast path).
  Tensor ngram_effective_table() const;
  // Learns the NB ratios from training rows (token ids, no padding needed; text_ngram_nb_ratios
  // with the model's order, buckets and alpha) into ngram_nb_ratio. ValueError when ngram_nb is
  // off, on a size mismatch, an empty row or a label outside [0, classes).
  void fit_ngram_nb(const std::vector<std::vector<int64_t>>& rows, const std::vector<int64_t>& labels);

 private:
  Tensor run(const Tensor& ids, std::vector<Tensor>* maps, Tensor* embedded = nullptr);
  Tensor wide(const Tensor& ids) const;  // (N, classes); ids already checked
  std::shared_ptr<AttentionPooling> pool_;
  std::shared_ptr<Linear> head_;
  Tensor ngram_;  // (ngram_buckets, classes), undefined when the branch is off
  Tensor nb_;     // (ngram_buckets, classes) buffer, undefined unless ngram_nb > 0
};

// The bucket in [0, buckets) of the n-gram ids[0..n) (n >= 1, buckets >= 1): a fixed 64-bit
// mix (splitmix64's finaliser over the order and each id), the same on every platform: saved
// models depend on it.
int64_t text_ngram_bucket(const int64_t* ids, int64_t n, int64_t buckets);
// The n-gram features of ids (N, L), row-major: slot (row r, position l, order n) at
// r * L * order + l * order + (n - 1) gets the bucket of ids[l..l+n) and the weight
// 1 / sqrt(the row's number of such n-grams) when those n ids are all non-padding (inside the
// row), else bucket 0 and weight 0. A row's non-zero slots do not depend on padding after its last token.
void text_ngram_features(const int64_t* ids, int64_t N, int64_t L, int64_t order, int64_t buckets,
                         int64_t* bucket, double* weight);

// NB log-count ratios of the n-grams of `rows` (token ids; a 0 id ends nothing, it is skipped
// like padding) with labels in [0, K): each row counts each bucket once (binary features, as
// NBSVM). For class k against the rest, with c_k(b) the number of class-k rows holding bucket b
// and c_rest(b) that of the other rows, over the buckets B+ seen in any row:
//   r[b, k] = log( (c_k(b) + alpha) / sum_{B+} (c_k + alpha) ) - log( (c_rest(b) + alpha) / sum_{B+} (c_rest + alpha) )
// and r = 0 on buckets no row holds. Returns (buckets, K) row-major. alpha > 0.
std::vector<double> text_ngram_nb_ratios(const std::vector<std::vector<int64_t>>& rows,
                                         const std::vector<int64_t>& labels, int64_t K,
                                         int64_t order, int64_t buckets, double alpha);

// The padding mask of token ids (N, L) I64: (N, L) F32, 1 where the id is Vocab::kPad (0).
Tensor padding_mask(const Tensor& ids);

}  // namespace focus
