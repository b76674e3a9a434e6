// In-memory image classification datasets (uint8 pixels + int64 labels + class names), the
// Fashion-MNIST loader, a deterministic stratified train/validation split, and DataLoader, which
// assembles normalised (optionally augmented) F32 batches in parallel.
// Determinism: the split depends only on (labels, val_size, seed); an epoch's order only on
// (seed, epoch); a sample's augmentation only on (seed, epoch, dataset index). None depends on the
// thread count. Limits: the whole dataset lives in memory (Fashion-MNIST train is 47 MB).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <memory>

#include "focus/data/augment.hpp"
#include "focus/data/classification_data.hpp"
#include "focus/data/image.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus {

class ImageDataset {
 public:
  ImageDataset() = default;
  // pixels: (N, C, H, W) row-major; labels: (N) in [0, class_names.size()). Throws ShapeError on
  // size mismatches, ValueError on an out-of-range label.
  ImageDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, int64_t channels,
               int64_t height, int64_t width, std::vector<std::string> class_names);

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  int64_t channels() const { return channels_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  int64_t image_numel() const { return channels_ * height_ * width_; }
  Shape shape() const { return {size(), channels_, height_, width_}; }  // (N, C, H, W)
  int64_t num_classes() const { return static_cast<int64_t>(class_names_.size()); }
  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::vector<int64_t>& labels() const { return labels_; }
  const uint8_t* pixels() const { return pixels_.data(); }  // (N, C, H, W), unchecked

  // Sample i's (C, H, W) pixels and label; ValueError when i is out of range.
  const uint8_t* image(int64_t i) const;
  int64_t label(int64_t i) const;
  Image image_at(int64_t i) const;        // sample i as a float image in [0, 1]
  std::vector<int64_t> class_counts() const;  // (num_classes)
  // Mean and (population) standard deviation of all pixels / 255, exact sums so deterministic.
  Normalization pixel_stats() const;

 private:
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  int64_t channels_ = 0, height_ = 0, width_ = 0;
  std::vector<std::string> class_names_;
};

// ---- Fashion-MNIST -----------------------------------------------------------------------------
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
const std::vector<std::string>& fashion_mnist_classes();  // "T-shirt/top", ..., "Ankle boot"

enum class Split { Train, Test };
Split parse_split(std::string_view name);  // "train" | "test"; ValueError otherwise
std::string_view split_name(Split split);

// Loads <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (gzipped or plain). IOError with
// an install hint when the files are missing, FormatError when they are corrupt or disagree.
ImageDataset load_fashion_mnist(const std::string& dir, Split split);

// ---- train / validation split ------------------------------------------------------------------
// split_train_val(ds.labels(), ds.num_classes(), val_size, seed) (data/classification_data.hpp):
// stratified: each class gives round(val_size * class_share) samples (largest remainders settle
// the rounding), drawn by a seeded shuffle of that class. ValueError unless 0 <= val_size < N.
// count >= 0: split only the first `count` samples (N = count; the rest are in neither list).
TrainValSplit split_train_val(const ImageDataset& ds, int64_t val_size = 5000, uint64_t seed = 0,
                              int64_t count = -1);

// ---- batches -----------------------------------------------------------------------------------
// Batch (data/classification_data.hpp): x (B, C, H, W) F32, normalised, for images.

// Assembles the samples `indices` into a batch, augmenting each with the draws of
// (seed, epoch, dataset index) when `augment` is given. Parallel over samples (OpenMP).
Batch make_batch(const ImageDataset& ds, std::span<const int64_t> indices,
                 const Normalization& norm, const AugmentOptions* augment = nullptr,
                 uint64_t seed = 0, uint64_t epoch = 0);

// An ImageDataset as ClassificationData: training draws are augmented with `augment` (when
// given) and the draws of (seed, epoch, index); evaluation draws are plain. The dataset must
// outlive it.
class ImageClassificationData : public ClassificationData {
 public:
  ImageClassificationData(const ImageDataset& ds, Normalization norm,
                          std::optional<AugmentOptions> augment = std::nullopt);
  const std::vector<int64_t>& labels() const override { return ds_.labels(); }
  const std::vector<std::string>& class_names() const override { return ds_.class_names(); }
  Batch batch(std::span<const int64_t> indices, const BatchDraw& draw) const override;
  std::string unit() const override { return "images"; }
  const ImageDataset& dataset() const { return ds_; }

 private:
  const ImageDataset& ds_;
  Normalization norm_;
  std::optional<AugmentOptions> augment_;
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = false;    // reshuffle every epoch (deterministic in (seed, epoch))
  bool drop_last = false;  // drop a final partial batch
  uint64_t seed = 0;       // drives shuffling and augmentation
  Normalization norm;                     // images only (the ImageDataset constructor)
  std::optional<AugmentOptions> augment;  // images only; none: plain normalisation (evaluation)
};

// Batches over a fixed list of dataset indices. Usage:
//   DataLoader dl(ds, split.train, opt);
//   for (epoch...) { dl.set_epoch(epoch); for (b < dl.num_batches()) { Batch bt = dl.batch(b); } }
// The dataset must outlive the loader. Batches may be assembled in any order (random access).
// Over any ClassificationData, training draws of (seed, epoch) are asked of it (norm and augment
// are then the data's own, and the options' are unused).
class DataLoader {
 public:
  DataLoader(const ImageDataset& ds, std::vector<int64_t> indices, LoaderOptions opt);
  DataLoader(const ClassificationData& data, std::vector<int64_t> indices, LoaderOptions opt);

  void set_epoch(uint64_t epoch);  // fixes this epoch's order
  uint64_t epoch() const { return epoch_; }
  int64_t num_batches() const;
  int64_t num_samples() const;  // samples visited per epoch (drop_last accounted for)
  const std::vector<int64_t>& order() const { return order_; }  // this epoch's visiting order
  Batch batch(int64_t b) const;
  // Rows [lo, hi) of batch b (a data-parallel rank's share): the same images, augmented the same
  // way, as those rows of batch(b).
  Batch batch(int64_t b, int64_t lo, int64_t hi) const;
  int64_t batch_rows(int64_t b) const;  // rows of batch b
  const LoaderOptions& options() const { return opt_; }

 private:
  void init();
  std::shared_ptr<const ClassificationData> owned_;  // the ImageDataset constructor's adapter
  const ClassificationData* data_;
  std::vector<int64_t> indices_;
  LoaderOptions opt_;
  uint64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace focus
