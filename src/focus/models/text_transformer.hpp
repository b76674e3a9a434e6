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
//   TF-IDF weights (ngram_idf = true): the slots weighted as scikit-learn's sublinear, L2-normalised
//     TF-IDF (models/text_ngram.hpp text_ngram_features) with the IDF of the training rows
//     (buffer ngram_idf (buckets), fit_ngram_idf) instead of sqrt-normalised counts.
//   Whole-text input (ngram_len > max_len): rows may hold up to ngram_len ids; the encoder reads
//     the first max_len, the branch all of them (a long e-mail's n-grams past the encoder's
//     window still count). input_len() = max(max_len, ngram_len) is what callers encode to.
//   Word-bounded n-grams (ngram_boundary = the id of the char tokenizer's space): no n-gram spans
//     a word boundary, like scikit-learn's char_wb analyzer (which also pads the text's first and
//     last words with a space; this does not) (`focus train` resolves the symbol
//     written as "ngram_boundary": " " to its id).
//   Convex fit (ngram_fit = C > 0): the table is fitted before training, alone and to
//     convergence, as the L2-regularised logistic regression of its features (text_ngram_fit,
//     L-BFGS; or ngram_fit_loss = squared_hinge, a linear SVM's; fit_ngram_table, whose
//     intercepts become the head's bias, its weight zero), and is then data (a
//     buffer): training moves the encoder, pooling and head on top of it, never the table, so
//     early stopping cannot cut the linear model short and the table cannot memorise.
// Padding: a padded position is never attended to, and every other computation is per token, so
// a sequence's logits do not depend on how much padding follows it (or where it is). Inputs are
// (N, L) I64 with L <= input_len(); every row must hold at least one non-padding id among its
// first max_len (ValueError).
// Letters: N batch, L tokens, D = dim, H heads, V vocabulary.
// Parameter names: tok_embed.weight, pos_embed.weight, blocks.{i}.*, norm.*, pool.*, head.*,
// ngram_table (only with ngram_buckets > 0: files without it load unchanged; a buffer with
// ngram_fit); the buffers ngram_nb_ratio (only with ngram_nb > 0) and ngram_idf (ngram_idf).
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "focus/models/classifier.hpp"
#include "focus/models/text_ngram.hpp"

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
  int64_t ngram_order = 2;    // n-grams of orders 1..ngram_order (1 to 6)
  double ngram_scale = 1.0;   // the branch's logits = ngram_scale x its weighted sum (> 0)
  double ngram_nb = 0.0;      // NB weighting's smoothing alpha (> 0: on; needs ngram_buckets > 0)
  bool ngram_idf = false;     // sublinear TF-IDF slot weights (needs ngram_buckets > 0)
  int64_t ngram_len = 0;      // ids a row may hold for the branch (0: max_len; else >= max_len)
  double ngram_fit = 0.0;     // > 0: the table fitted convexly with this C, then frozen
  std::string ngram_fit_loss = "logistic";  // the fit's loss: logistic or squared_hinge
  int64_t ngram_boundary = -1;  // a word-ending id: n-grams stay within words (-1: off)

  // The ids a row may hold: max(max_len, ngram_len).
  int64_t input_len() const { return std::max(max_len, ngram_len); }

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
  // The pooling weights averaged over heads: (N, L') with L' = min(L, max_len) (the encoder's
  // tokens), each row summing to 1 over its tokens and 0 on padding. Runs a forward in the
  // model's current mode. The maps of forward_traced and the embeddings of forward_embedded are
  // over those L' tokens too.
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
  // Learns the IDF of training rows into ngram_idf (ValueError unless ngram_idf, or an empty row).
  void fit_ngram_idf(const std::vector<std::vector<int64_t>>& rows);
  // Fits the table convexly (text_ngram_fit with C = ngram_fit, the NB ratios and IDF as fitted
  // so far: call fit_ngram_nb / fit_ngram_idf first) on training rows, writes table = w / scale,
  // sets the head's bias to the intercepts and zeroes its weight: the model's logits are
  // then exactly the fitted linear model's, and training adds what the encoder finds on top. class_weights: (classes) or empty. ValueError
  // unless ngram_fit > 0, and as fit_ngram_nb.
  NgramFit fit_ngram_table(const std::vector<std::vector<int64_t>>& rows,
                           const std::vector<int64_t>& labels,
                           const std::vector<double>& class_weights = {});
  // The IDF buffer (ngram_buckets) F32; undefined unless ngram_idf.
  const Tensor& ngram_idf() const { return idf_; }

 private:
  Tensor run(const Tensor& ids, std::vector<Tensor>* maps, Tensor* embedded = nullptr);
  Tensor wide(const Tensor& ids) const;  // (N, classes); ids already checked
  // Checks what the encoder does not see (L <= input_len(), the ids past max_len) and returns
  // the encoder's part of ids: its first max_len columns (ids itself when L <= max_len).
  Tensor checked_input(const Tensor& ids) const;
  std::shared_ptr<AttentionPooling> pool_;
  std::shared_ptr<Linear> head_;
  Tensor ngram_;  // (ngram_buckets, classes), undefined when the branch is off
  Tensor nb_;     // (ngram_buckets, classes) buffer, undefined unless ngram_nb > 0
  Tensor idf_;    // (ngram_buckets) buffer, undefined unless ngram_idf
  void check_fit_rows(const char* what, const std::vector<std::vector<int64_t>>& rows) const;
};

// The checks every text_transformer path makes of token ids (N, L) row-major, with the same
// messages (ValueError): each id in [0, vocab), and each row holding a non-padding id among its
// first `window` (the encoder's max_len) ids. `who` prefixes the messages.
void check_token_ids(const int64_t* ids, int64_t N, int64_t L, int64_t vocab, int64_t window,
                     const std::string& who);

// The padding mask of token ids (N, L) I64: (N, L) F32, 1 where the id is Vocab::kPad (0).
Tensor padding_mask(const Tensor& ids);

}  // namespace focus
