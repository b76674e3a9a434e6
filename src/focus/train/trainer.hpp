// The one trainer of classifiers, whatever their input (images, token sequences): a Classifier
// (models/classifier.hpp) trained on ClassificationData (data/classification_data.hpp) with
// shuffled mini-batches (optionally split into accumulation micro-batches), label-smoothed
// cross-entropy (optionally class-weighted, for imbalance), gradient clipping, an LR schedule, evaluation on a
// validation split each epoch, early stopping, a time limit, and files in cfg.out:
//   metrics.jsonl               one JSON line per epoch
//   config.json                 the effective configuration
//   model_last.safetensors      model after the latest epoch
//   model_best.safetensors      model with the best validation accuracy so far
//   checkpoint_last.safetensors model + optimizer state + RNG streams + trainer state (resume)
// Resume continues at the epoch after the checkpoint and is bit-identical to an uninterrupted run
// with the same seed and thread count: data order and augmentation depend only on (seed, epoch,
// index), and the checkpoint restores every parameter, buffer, optimizer slot and dropout stream.
// Several processes (`mpirun -np N focus train ...`, a Communicator of N ranks): each rank builds
// and trains on its share of every global batch and the gradients are summed over the ranks
// (train/distributed.hpp); every rank evaluates (the same weights, the same numbers) and rank 0's
// decisions hold; rank 0 alone writes the run directory and prints progress. Resume: every rank
// reads the checkpoint (a path every rank can read), then rank 0's weights are broadcast.
//
// Commit protocol (both trainers; train/checkpoint.hpp): the checkpoint is the one commit point.
// At an epoch end it is written first (atomically: temp file, fsync, rename); the other files are
// derived from the state it holds and written after it (metrics.jsonl from its history,
// model_last, model_best when that epoch set the best). So a kill leaves them at most one epoch
// behind the checkpoint, never ahead. Resume trusts only the checkpoint: it removes the temporary
// files of interrupted writes and rewrites every derived file from the checkpoint's state before
// training on, so a killed run resumed ends bit-identical to an uninterrupted one
// (tests/apps/train_kill_test.cpp kills `focus train` at each step of this protocol through the
// kill points, FOCUS_TEST_KILL_AT: "step" in every step, "commit", "after:<file>",
// "atomic-partial:<file>", "atomic-rename:<file>").
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/data/dataset.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/models/classifier.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/optim/optimizer.hpp"
#include "focus/optim/schedule.hpp"
#include "focus/train/checkpoint.hpp"
#include "focus/train/config.hpp"
#include "focus/train/distributed.hpp"
#include "focus/train/metrics.hpp"

namespace focus {

struct EvalResult {
  double loss = 0;
  ConfusionMatrix cm{1};
  double accuracy() const { return cm.total() ? double(cm.correct()) / double(cm.total()) : 0; }
};

// Mean cross-entropy and confusion matrix of `model` (put in eval mode, no graph) on `indices`;
// `logits_out`, when given, receives the (n, K) raw logits row-major in the order of `indices`.
EvalResult evaluate(Classifier& model, const ClassificationData& data,
                    const std::vector<int64_t>& indices, int64_t batch = 256,
                    std::vector<double>* logits_out = nullptr);
// Images: evaluate(model, ImageClassificationData(ds, norm), indices, batch).
EvalResult evaluate(ImageClassifier& model, const ImageDataset& ds,
                    const std::vector<int64_t>& indices, const Normalization& norm,
                    int64_t batch = 256);

// Weights for the classes of `labels` inversely proportional to their counts, normalised so the
// weighted count equals the sample count: w_c = N / (K * n_c) (scikit-learn's "balanced"); an
// absent class gets 0.
std::vector<double> balanced_class_weights(const std::vector<int64_t>& labels, int64_t num_classes);

struct StepStats {
  double loss = 0;      // mean loss over the batch
  int64_t correct = 0;  // correct predictions in the batch
  int64_t targets = 0;  // predictions scored (the rows; text_mlm: the masked tokens; sasrec: positions)
  double grad_norm = 0; // before clipping
};

class Trainer {
 public:
  // Builds the optimizer and schedule from cfg; `train` holds the training images (the
  // validation split is taken from it, cfg.val_size, seeded; augmented per cfg.augment/erase_p).
  // `comm`: the ranks training together (nullptr: this process alone); it must outlive the trainer.
  // The last `train_only` images of `train` (reviewed labels, --extra-labels) join the training
  // split and never the validation split, which is taken from the others as without them; the
  // epoch records then say how many ("extra_train_images").
  Trainer(TrainConfig cfg, ImageClassifier& model, const ImageDataset& train,
          Communicator* comm = nullptr, int64_t train_only = 0);
  // Any classifier on any data: `split` names the training and validation samples of `data`
  // (none: cfg.val_size of them held out, stratified and seeded, as for images). `info` is what
  // the model files carry besides the weights (class names, normalisation, tokenizer); its
  // class names are the data's. `class_weights` (one per class, or empty = unweighted) weight
  // the loss. `data` must outlive the trainer.
  Trainer(TrainConfig cfg, Classifier& model, const ClassificationData& data,
          Communicator* comm = nullptr, std::optional<TrainValSplit> split = std::nullopt,
          ModelInfo info = {}, std::vector<double> class_weights = {});
  ~Trainer();

  // Runs epochs [start_epoch, cfg.epochs); returns the history (one JSON object per epoch).
  std::vector<nlohmann::json> fit();
  // One optimizer step on a global batch (every rank passes the whole batch and trains on its
  // share): the parts of train/distributed.hpp, losses scaled so the gradient equals the full
  // batch's mean-loss gradient; clip; schedule; step. Stats are over the global batch.
  StepStats train_step(const Tensor& x, const Tensor& y);

  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);  // FormatError on a mismatching checkpoint

  Optimizer& optimizer() { return *opt_; }
  int start_epoch() const { return start_epoch_; }
  const TrainValSplit& split() const { return split_; }
  const ModelInfo& info() const { return info_; }
  // Called after every epoch with its record (used by the CLI for extra output); optional.
  std::function<void(const nlohmann::json&)> on_epoch;

 private:
  // The files derived from the committed state (metrics.jsonl, model_last, model_best when the
  // latest epoch set the best), in the order the commit writes them.
  std::vector<RunFile> derived_files() const;
  // train_step on this rank's rows (x, y) of a global batch planned as `plan`.
  StepStats step_rows(const StepPlan& plan, const Tensor& x, const Tensor& y);
  Tensor loss(const Tensor& logits, const Tensor& y) const;
  Trainer(TrainConfig cfg, Classifier& model, std::unique_ptr<ClassificationData> owned,
          const ClassificationData* data, Communicator* comm, std::optional<TrainValSplit> split,
          ModelInfo info, std::vector<double> class_weights, int64_t train_only);

  TrainConfig cfg_;
  Classifier& model_;
  std::unique_ptr<ClassificationData> owned_;  // the image constructor's adapter
  const ClassificationData& train_;
  std::vector<double> class_weights_;
  int64_t train_only_ = 0;  // the image constructor's training-only rows (--extra-labels)
  TrainValSplit split_;
  ModelInfo info_;
  std::unique_ptr<Optimizer> opt_;
  std::unique_ptr<LrSchedule> schedule_;
  int64_t steps_per_epoch_ = 0;
  int start_epoch_ = 0;
  double best_val_acc_ = -1;
  int epochs_since_best_ = 0;
  std::vector<nlohmann::json> history_;
  std::unique_ptr<Communicator> local_comm_;  // when no communicator was given
  std::unique_ptr<ReplicaGroup> group_;
};

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& cfg, NamedTensors params);
// The split the Trainer takes when it is given none, of the first labels.size() samples: with
// cfg.limit_train below that, the first val_size of a limit_train prefix validate and the rest
// train; else split_train_val(labels, num_classes, cfg.val_size, cfg.seed). ValueError unless
// val_size < the samples used.
TrainValSplit default_split(const std::vector<int64_t>& labels, int64_t num_classes,
                            const TrainConfig& cfg, const std::string& unit = "images");
// The image trainer's data: `train` with cfg's augmentation (--augment, --erase-p) on training
// draws, normalised by `norm`. `train` must outlive it.
std::unique_ptr<ClassificationData> image_training_data(const ImageDataset& train, const TrainConfig& cfg,
                                                        Normalization norm = {});
// cfg.schedule over cfg.epochs * steps_per_epoch steps, warm-up cfg.warmup_epochs.
std::unique_ptr<LrSchedule> make_schedule(const TrainConfig& cfg, int64_t steps_per_epoch);

}  // namespace focus
