// Fine-tuning a trained image classifier on reviewed labels (issue 19, "labels flow back"):
// the model's current weights are the start, the data is the reviewed images mixed with a replay
// of its training data, and the one classification trainer (trainer.hpp) does the steps.
//
//   LoadedModel start = load_fine_tune_start("runs/cnn2/checkpoint_last.safetensors");
//   FineTuneSpec spec{.replay_share = 0.5, .replay_pool = split.train, .val = split.val};
//   fine_tune(cfg, *start.model, start.info, fashion_train, reviewed.pixels, reviewed.labels, spec);
//
// The mix: every reviewed image, plus m = round(n R / (1 - R)) images drawn (seeded, without
// replacement) from `replay_pool`, so the replay is the share R of every epoch; the trainer
// shuffles the union, so each batch holds R of replay in expectation (hypergeometric around it).
// Replay is what keeps the model from forgetting the training distribution while it moves toward
// the reviewers' labels (experience replay; R = 0 fine-tunes on the reviewed images alone).
// Validation (each epoch, reported) is on `val`, never trained on: for `focus train --reviewed`
// the run's own validation split, so `focus promote` compares the candidate on the same images.
// The candidate is the last epoch's model, not the epoch best on `val`: picking on the gate's
// data would favour the least-moved model (or, on shifted data, flatter the gate).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/data/dataset.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/train/config.hpp"

namespace focus {

struct FineTuneSpec {
  double replay_share = 0.5;         // R in [0, 1)
  std::vector<int64_t> replay_pool;  // indices into the base data that replay may draw
  std::vector<int64_t> val;          // indices into the base data the trainer validates on
};

struct FineTuneResult {
  std::vector<nlohmann::json> history;  // the trainer's epoch records
  int64_t reviewed = 0, replay = 0;     // images of each kind in the mix
  double best_val_acc = 0;              // of the epoch saved as model_best
};

// m = round(n R / (1 - R)), at most `pool` (ValueError for R outside [0, 1)).
int64_t replay_count(int64_t reviewed, double replay_share, int64_t pool);

// Trains `model` (from its current weights) per `cfg` (epochs, lr, batch, seed, out, ...;
// cfg.resume is ignored: the caller loaded the weights) on the reviewed images (`pixels`:
// (n, C, H, W) 8-bit, `labels`: n class indices) plus the replay drawn from `base`, validating on
// spec.val of `base`. Writes the trainer's run files into cfg.out; `model` ends as the last
// epoch's model (model_last.safetensors, the callers' candidate).
// ShapeError when the reviewed pixels are not n images of base's shape, ValueError for a label
// outside base's classes, no reviewed image, an empty `val` or an index outside `base`.
FineTuneResult fine_tune(const TrainConfig& cfg, ImageClassifier& model, const ModelInfo& info,
                         const ImageDataset& base, std::span<const uint8_t> pixels,
                         std::span<const int64_t> labels, const FineTuneSpec& spec);

// The starting point of `focus train --resume P --reviewed ...`: a training checkpoint
// (focus-checkpoint/1: its model's weights, without the optimizer state) or an image-model file
// (focus-image-classifier/1). `class_names` fill in a checkpoint's ModelInfo (it has none).
// IOError for a missing file, FormatError for anything else.
LoadedModel load_fine_tune_start(const std::string& path, const std::vector<std::string>& class_names);

}  // namespace focus
