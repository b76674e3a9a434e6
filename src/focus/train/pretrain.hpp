// Masked-token pretraining of the text-transformer encoder on unlabelled text, and fine-tuning
// from it (issue 20). `focus pretrain` runs run_pretraining; `focus train --task text --init F`
// and `focus cv --init F` start the classifier's encoder from F (text_classifier_from_pretrained).
//
// Masking (BERT's): of each sequence's n tokens, max(1, round(p n)) positions are drawn (p =
// --mask-prob, 0.15); each drawn position is replaced by the mask token with probability 0.8, by
// a token drawn uniformly from the non-special vocabulary with probability 0.1, and kept with
// probability 0.1; the target is the original token at the drawn positions and ignored (-100)
// elsewhere. The mask token is <s> (Vocab::kBos): classification inputs never hold it
// (encode_for_classification adds no <s>), so no vocabulary entry is added.
// Draws depend on (seed, epoch, index) only; evaluation draws are fixed (epoch 0, seed 0), so
// every epoch's validation masks the same positions.
//
// Unlabelled text (--corpus, comma-separated, from the data cache; tools/fetch-data.sh):
//   moby-dick  unlabelled/moby-dick.txt          sotu  unlabelled/sotu/*.txt (233 addresses)
//   ham        the ham messages of spam/ (text/spam_corpus.hpp: subject + body text)
//   sentiment  the 3,000 sentiment sentences WITHOUT labels (transductive: it includes the
//              cross-validation's test sentences; off by default, reported apart)
// cut into sentences (split_sentences). The tokenizer is learned on (a seeded sample of) them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/data/classification_data.hpp"
#include "focus/text/tokenizer.hpp"
#include "focus/text/vocab.hpp"
#include "focus/train/config.hpp"

namespace focus {

class Rng;
class TextTransformer;

inline constexpr int64_t kMaskTokenId = Vocab::kBos;
inline constexpr int64_t kIgnoreTarget = -100;

struct MaskingOptions {
  double mask_prob = 0.15;     // share of each sequence's tokens predicted
  double mask_share = 0.8;     // of those: replaced by the mask token
  double random_share = 0.1;   // replaced by a random regular token (the rest are kept)
  int64_t vocab_size = 0;      // random tokens are drawn from [Vocab::kNumSpecial, vocab_size)
};

struct MaskedRow {
  std::vector<int64_t> input;   // the row with the drawn positions replaced
  std::vector<int64_t> target;  // the original token at drawn positions, kIgnoreTarget elsewhere
};

// One row's masking (see above). ValueError for an empty row, a probability outside its range
// or a vocabulary with no regular token.
MaskedRow mask_tokens(const std::vector<int64_t>& row, const MaskingOptions& opt, Rng& rng);

// Token rows for masked-token training: batches are x (B, L) masked ids and y (B, L) targets
// (kIgnoreTarget at unpredicted and padding positions), right-padded to the longest row.
// The "classes" are the vocabulary's tokens (the trainer's accuracy is the masked-token one).
class MaskedTokenData : public ClassificationData {
 public:
  MaskedTokenData(std::vector<std::vector<int64_t>> rows, const Vocab& vocab, MaskingOptions opt);
  const std::vector<int64_t>& labels() const override { return labels_; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  Batch batch(std::span<const int64_t> indices, const BatchDraw& draw) const override;
  std::string unit() const override { return "sequences"; }
  const std::vector<int64_t>& row(int64_t i) const { return rows_.at(size_t(i)); }

 private:
  std::vector<std::vector<int64_t>> rows_;
  std::vector<int64_t> labels_;  // all 0 (unused: the split is given)
  std::vector<std::string> class_names_;
  MaskingOptions opt_;
};

// Sentences of `text`: whitespace collapsed, cut after '.', '!' or '?' followed by a space (or
// at the end), kept when they hold at least `min_words` words.
std::vector<std::string> split_sentences(std::string_view text, int min_words = 3);

// The sentences of the named corpora (see above), in corpus order. ValueError for an unknown
// name; IOError (with the fetch command) for a missing file.
std::vector<std::string> unlabelled_sentences(const std::string& corpora,
                                              const std::string& cache_dir = "");

struct PretrainResult {
  std::string model_path;  // <out>/model_best.safetensors (text_mlm with its tokenizer)
  int64_t train_rows = 0, val_rows = 0, vocab_size = 0;
  int epochs = 0;
  double train_seconds = 0, val_acc = 0, val_loss = 0;
};

// Learns the tokenizer (cfg.src_tokenizer, cfg.bpe_merges, cfg.min_count) on a seeded sample of
// at most 100,000 of `texts`, encodes them (cfg.max_len), drops rows under 4 tokens, holds
// cfg.val_size rows out (seeded), keeps at most cfg.limit_train training rows (0 = all), and
// trains text_mlm (cfg.model_config) with the one trainer (cfg: epochs, lr, time limit, ...).
PretrainResult run_pretraining(const TrainConfig& cfg, const std::vector<std::string>& texts);

// The start of fine-tuning: a text_transformer with num_classes outputs whose encoder is the
// pretrained file's (a text_mlm or text_transformer model file: the tensors of
// TextEncoderModel::is_encoder_parameter copied exactly) and whose pooling and head are fresh
// (seeded). `overrides` (a JSON object) may set dropout and attn_dropout; any other key must
// equal the file's value (ValueError naming it). `tokenizer` receives the file's tokenizer.
// FormatError for a file without a tokenizer or of another model.
std::unique_ptr<TextTransformer> text_classifier_from_pretrained(
    const std::string& path, int64_t num_classes, const nlohmann::json& overrides, uint64_t seed,
    std::unique_ptr<Tokenizer>& tokenizer);

}  // namespace focus
