// The data side of the one classification trainer: ClassificationData, what a labelled data set
// of any input kind gives the trainer (its size, labels and class names, and a batch of given
// samples as an input tensor and labels), and the stratified, seeded ways to cut one: a
// train/validation split and k folds for cross-validation.
// Images (data/dataset.hpp ImageClassificationData) give (B, C, H, W) F32 batches, token
// sequences (train/text_data.hpp) (B, L) I64 batches. Determinism: a batch depends only on the
// indices and the BatchDraw (seed, epoch), never on the thread count.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

struct Batch {
  Tensor x;                      // the model's input: (B, C, H, W) F32 images, (B, L) I64 tokens
  Tensor y;                      // (B) I64 labels
  std::vector<int64_t> indices;  // (B) dataset indices of the rows
};

// How a batch is drawn: for training (augmented, when the data augments, with the draws of
// (seed, epoch, index)) or for evaluation (plain).
struct BatchDraw {
  bool train = false;
  uint64_t seed = 0;
  uint64_t epoch = 0;
};

class ClassificationData {
 public:
  virtual ~ClassificationData() = default;
  int64_t size() const { return int64_t(labels().size()); }
  int64_t num_classes() const { return int64_t(class_names().size()); }
  virtual const std::vector<int64_t>& labels() const = 0;  // (N) in [0, num_classes)
  virtual const std::vector<std::string>& class_names() const = 0;
  // Samples `indices` as one batch; ValueError for an index outside [0, size).
  virtual Batch batch(std::span<const int64_t> indices, const BatchDraw& draw) const = 0;
  // What a sample is called in messages ("images", "sentences").
  virtual std::string unit() const = 0;
};

// Samples per class of `labels` (each in [0, num_classes), else ValueError).
std::vector<int64_t> class_counts(const std::vector<int64_t>& labels, int64_t num_classes);

struct TrainValSplit {
  std::vector<int64_t> train, val;  // disjoint, sorted dataset indices covering 0..N-1
};
// Stratified: each class gives round(val_size * class_share) samples (largest remainders settle
// the rounding), drawn by a seeded shuffle of that class. ValueError unless 0 <= val_size < N.
TrainValSplit split_train_val(const std::vector<int64_t>& labels, int64_t num_classes,
                              int64_t val_size, uint64_t seed);

// Stratified k-fold assignment: each class's samples, in a seeded shuffle, are dealt to the folds
// in turn, the first fold of each class continuing where the previous class stopped (so fold
// sizes differ by at most one). Returns the fold of every sample, in [0, folds). ValueError
// unless 2 <= folds <= N.
std::vector<int64_t> stratified_folds(const std::vector<int64_t>& labels, int64_t num_classes,
                                      int64_t folds, uint64_t seed);

// Seeded in-place Fisher-Yates shuffle (the draws the split, the folds and the loaders use).
void shuffle_indices(std::vector<int64_t>& v, uint64_t seed);

}  // namespace focus
