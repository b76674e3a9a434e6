// Text classification data and runs (task text): labelled texts from the user's files
// (--train/--valid/--test: TSV or JSON lines, text/labelled.hpp) or the built-in sentiment sites
// (--data sentiment[:<site>,...]), class names, a tokenizer learned on the training rows only,
// TextClassificationData (the token-id ClassificationData the one trainer takes), and one whole
// run: train text-transformer with train/Trainer, fit the temperature on the validation rows
// (infer/calibration.hpp), score the test rows (accuracy, macro-F1, per-class P/R/F1, ROC-AUC
// for two classes). Before training, the n-gram branch learns what its config asks from the
// training rows (NB ratios, IDF, the convex fit of its table: models/text_ngram.hpp). `focus train --task text` runs one; `focus cv` runs one per fold.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/data/classification_data.hpp"
#include "focus/text/labelled.hpp"
#include "focus/text/tokenizer.hpp"
#include "focus/train/config.hpp"
#include "focus/train/metrics.hpp"

namespace focus {

class Communicator;

// Token sequences with labels: batches are (B, L) I64, right-padded with 0 to the longest row of
// the batch. Training draws replace each token by <unk> with probability token_dropout (word
// dropout, a regulariser), drawn from (seed, epoch, index) alone; evaluation draws are plain.
class TextClassificationData : public ClassificationData {
 public:
  // ids: one non-empty row per sample; labels in [0, class_names.size()); token_dropout in
  // [0, 1). ValueError otherwise.
  TextClassificationData(std::vector<std::vector<int64_t>> ids, std::vector<int64_t> labels,
                         std::vector<std::string> class_names, double token_dropout = 0);
  const std::vector<int64_t>& labels() const override { return labels_; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  Batch batch(std::span<const int64_t> indices, const BatchDraw& draw) const override;
  std::string unit() const override { return "texts"; }
  const std::vector<int64_t>& ids(int64_t i) const { return ids_.at(size_t(i)); }

 private:
  std::vector<std::vector<int64_t>> ids_;
  std::vector<int64_t> labels_;
  std::vector<std::string> class_names_;
  double token_dropout_ = 0;
};

// Every labelled text of a task, in one list: the training file's rows first, then the
// validation file's, then the test file's (or the built-in sites in order).
struct TextCorpus {
  std::vector<LabelledText> rows;
  std::vector<std::string> source;       // per row: the file (or site) it came from
  std::vector<std::string> class_names;  // sorted (numerically when every label is an integer)
  std::vector<int64_t> labels;           // per row, into class_names
  std::vector<int64_t> train, valid, test;  // row indices; valid/test empty for built-in data
};

// --train/--valid[/--test] (class names from the training file: a label of the other files that
// it lacks is a FormatError naming the file and line), or --data sentiment[:site,...].
TextCorpus load_text_corpus(const TrainConfig& cfg);
// Class names of `labels` sorted (numerically when all are integers) and each row's class id.
std::vector<std::string> sorted_class_names(const std::vector<LabelledText>& rows);

// The tokenizer (cfg.src_tokenizer, cfg.bpe_merges, cfg.min_count) learned on rows `train`.
std::unique_ptr<Tokenizer> learn_text_tokenizer(const TextCorpus& corpus,
                                                const std::vector<int64_t>& train,
                                                const TrainConfig& cfg);
// Every row encoded by `tok` (encode_for_classification: the first `len` ids), token_dropout.
TextClassificationData encode_corpus(const TextCorpus& corpus, const Tokenizer& tok, int64_t len,
                                     double token_dropout);

// What one run scored on its test rows (the best model, at the fitted temperature).
struct TextRunResult {
  ConfusionMatrix cm{1};
  double accuracy = 0, macro_f1 = 0;
  double roc_auc = -1;  // two classes only (-1 otherwise)
  double temperature = 1, test_nll = 0;
  int epochs = 0;
  int best_epoch = 0;  // 1-based: the epoch of the best validation accuracy (the first of ties)
  double best_val_accuracy = 0;  // that epoch's validation accuracy (an inner score, not test)
  double train_seconds = 0;
  std::string model_path;  // model_best.safetensors, or model_last with last_epoch (calibrated)
  nlohmann::json metrics;  // metrics_to_json + roc_auc + calibration
  std::vector<double> test_logits;  // (scored rows, K) row-major, raw (before the temperature)
  std::vector<int64_t> test_labels; // (scored rows)
};

// Trains text-transformer on rows `train`, validates (early stopping, model_best, temperature)
// on rows `valid`, and scores rows `test` (none: the validation rows are scored). The tokenizer is
// learned on `train`. Files go to cfg.out (train/trainer.hpp); the model file carries the
// tokenizer. `last_epoch`: score the last epoch's model (model_last) instead of the best one (a
// refit whose validation rows are among its training rows: `focus cv --refit`). `temperature` > 0:
// use it instead of fitting one on `valid` (the refit's: its validation rows were trained on, so
// the held-out run's temperature is the honest one).
TextRunResult run_text_classification(const TrainConfig& cfg, const TextCorpus& corpus,
                                      const std::vector<int64_t>& train,
                                      const std::vector<int64_t>& valid,
                                      const std::vector<int64_t>& test,
                                      Communicator* comm = nullptr, bool last_epoch = false,
                                      double temperature = 0);

}  // namespace focus
