// What the model-compression commands share (cmd_prune_heads.cpp, cmd_early_exit.cpp):
// fine-tuning a changed image model on training images outside the run's validation split,
// through the one fine-tuning path (train/fine_tune.hpp, replay share 0: the "reviewed" images
// are the training images themselves), validating each epoch on that split; and timing two
// variants against each other, interleaved.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <string>
#include <vector>

#include "focus/data/dataset.hpp"
#include "focus/infer/model_file.hpp"

namespace focus {

struct SplitFineTune {
  int epochs = 0;           // 0: nothing is done
  int64_t images = 20000;   // the first N training images outside the validation split
  double lr = 3e-4;         // AdamW, cosine to lr / 100, no warm-up, no augmentation
  uint64_t seed = 1;
  std::string run_dir;      // the trainer's run files
  std::string data_dir;     // recorded in the run's config
};

// Fine-tunes `model` in place (it ends in eval mode, the last epoch's weights).
void fine_tune_outside_val(ImageClassifier& model, const ModelInfo& info, const ImageDataset& train,
                           const std::vector<int64_t>& val, const SplitFineTune& ft);

// The medians (the mean of the middle two for an even count) of `reps` calls of a and of b, each
// returning its own milliseconds: one warm-up call each, then a before b on even rounds and b
// before a on odd ones, so that slow drifts hit both alike.
std::pair<double, double> interleaved_median_ms(const std::function<double()>& a,
                                                const std::function<double()>& b, int reps);

}  // namespace focus
