// Datasets, the Fashion-MNIST loader, the stratified split and batch assembly (see dataset.hpp).
#include "focus/data/dataset.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "focus/data/idx.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {
namespace {

constexpr uint32_t kShuffleTag = 0x5F1u;

// "<dir>/<stem>.gz" if present, else "<dir>/<stem>" if present, else IOError with the hint.
std::string find_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const std::string& name : {stem + ".gz", stem}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  throw IOError(fmt::format(
      "fashion-mnist: {}/{}[.gz] not found (install the Debian package: "
      "apt-get install dataset-fashion-mnist, or pass the directory holding the IDX files)",
      dir, stem));
}

}  // namespace

// ---- ImageDataset --------------------------------------------------------------------------------

ImageDataset::ImageDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels,
                           int64_t channels, int64_t height, int64_t width,
                           std::vector<std::string> class_names)
    : pixels_(std::move(pixels)), labels_(std::move(labels)), channels_(channels),
      height_(height), width_(width), class_names_(std::move(class_names)) {
  FOCUS_CHECK(channels > 0 && height > 0 && width > 0, ShapeError,
              "ImageDataset: bad image size (C={}, H={}, W={})", channels, height, width);
  FOCUS_CHECK(pixels_.size() == labels_.size() * static_cast<size_t>(image_numel()), ShapeError,
              "ImageDataset: {} pixels for {} labels of shape ({}, {}, {})", pixels_.size(),
              labels_.size(), channels, height, width);
  FOCUS_CHECK(!class_names_.empty(), ValueError, "ImageDataset: no class names");
  for (size_t i = 0; i < labels_.size(); ++i)
    FOCUS_CHECK(labels_[i] >= 0 && labels_[i] < num_classes(), ValueError,
                "ImageDataset: label {} at index {} not in [0, {})", labels_[i], i, num_classes());
}

const uint8_t* ImageDataset::image(int64_t i) const {
  FOCUS_CHECK(i >= 0 && i < size(), ValueError, "ImageDataset: index {} not in [0, {})", i, size());
  return pixels_.data() + i * image_numel();
}

int64_t ImageDataset::label(int64_t i) const {
  FOCUS_CHECK(i >= 0 && i < size(), ValueError, "ImageDataset: index {} not in [0, {})", i, size());
  return labels_[i];
}

Image ImageDataset::image_at(int64_t i) const {
  const uint8_t* px = image(i);
  Image img = make_image(channels_, height_, width_);
  for (int64_t k = 0; k < image_numel(); ++k) img.data[k] = px[k] * (1.f / 255.f);
  return img;
}

std::vector<int64_t> ImageDataset::class_counts() const {
  return focus::class_counts(labels_, num_classes());
}

Normalization ImageDataset::pixel_stats() const {
  FOCUS_CHECK(!pixels_.empty(), ValueError, "ImageDataset: pixel_stats of an empty dataset");
  const int64_t n = static_cast<int64_t>(pixels_.size());
  const uint8_t* p = pixels_.data();
  uint64_t sum = 0, sumsq = 0;  // exact: 255^2 * 2^40 pixels still fit
#pragma omp parallel for reduction(+ : sum, sumsq) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    sum += p[i];
    sumsq += static_cast<uint64_t>(p[i]) * p[i];
  }
  const double mean = static_cast<double>(sum) / n / 255.0;
  const double var = static_cast<double>(sumsq) / n / (255.0 * 255.0) - mean * mean;
  return {static_cast<float>(mean), static_cast<float>(std::sqrt(std::max(var, 0.0)))};
}

// ---- Fashion-MNIST -------------------------------------------------------------------------------

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                 "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Split parse_split(std::string_view name) {
  if (name == "train") return Split::Train;
  if (name == "test") return Split::Test;
  throw ValueError(fmt::format("unknown split '{}' (train, test)", name));
}

std::string_view split_name(Split split) { return split == Split::Train ? "train" : "test"; }

ImageDataset load_fashion_mnist(const std::string& dir, Split split) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx_images(images_path);
  const IdxArray labels = read_idx_labels(labels_path, 10);
  FOCUS_CHECK(images.dims[1] == 28 && images.dims[2] == 28, FormatError,
              "fashion-mnist: {}: images are {}x{}, expected 28x28", images_path, images.dims[1],
              images.dims[2]);
  FOCUS_CHECK(images.dims[0] == labels.dims[0], FormatError,
              "fashion-mnist: {} holds {} images but {} holds {} labels", images_path,
              images.dims[0], labels_path, labels.dims[0]);
  std::vector<int64_t> y(labels.data.begin(), labels.data.end());
  return ImageDataset(std::move(images.data), std::move(y), 1, 28, 28, fashion_mnist_classes());
}

// ---- split ---------------------------------------------------------------------------------------

TrainValSplit split_train_val(const ImageDataset& ds, int64_t val_size, uint64_t seed, int64_t count) {
  FOCUS_CHECK(count <= ds.size(), ValueError, "split_train_val: count {} is more than the dataset's {} samples",
              count, ds.size());
  const int64_t n = count >= 0 ? count : ds.size();
  const std::vector<int64_t> labels(ds.labels().begin(), ds.labels().begin() + n);
  return split_train_val(labels, ds.num_classes(), val_size, seed);
}

// ---- batches -------------------------------------------------------------------------------------

Batch make_batch(const ImageDataset& ds, std::span<const int64_t> indices,
                 const Normalization& norm, const AugmentOptions* augment, uint64_t seed,
                 uint64_t epoch) {
  FOCUS_CHECK(norm.std > 0.f, ValueError, "make_batch: std {} must be positive", norm.std);
  if (augment) augment->validate();
  const int64_t B = static_cast<int64_t>(indices.size()), C = ds.channels(), H = ds.height(),
                W = ds.width(), D = ds.image_numel();
  for (int64_t i : indices)
    FOCUS_CHECK(i >= 0 && i < ds.size(), ValueError, "make_batch: index {} not in [0, {})", i,
                ds.size());
  std::array<float, 256> lut;
  for (int v = 0; v < 256; ++v) lut[v] = (v / 255.f - norm.mean) / norm.std;
  Batch batch;
  batch.x = Tensor::empty({B, C, H, W});     // (B, C, H, W)
  batch.y = Tensor::empty({B}, DType::I64);  // (B)
  batch.indices.assign(indices.begin(), indices.end());
  float* x = batch.x.data<float>();
  int64_t* y = batch.y.data<int64_t>();
  const float erase_value = augment ? augment->erase_value : 0.f;
  // Indices were checked above: nothing in the loop throws.
#pragma omp parallel for schedule(static) if (B * D > 65536)
  for (int64_t b = 0; b < B; ++b) {
    const int64_t idx = indices[b];
    const AugmentParams p =
        augment ? sample_augment(*augment, H, W, seed, epoch, static_cast<uint64_t>(idx))
                : AugmentParams{};
    render_augmented(ds.pixels() + idx * D, x + b * D, C, H, W, p, lut.data(), erase_value);
    y[b] = ds.labels()[idx];
  }
  return batch;
}

// ---- ImageClassificationData ---------------------------------------------------------------------

ImageClassificationData::ImageClassificationData(const ImageDataset& ds, Normalization norm,
                                                 std::optional<AugmentOptions> augment)
    : ds_(ds), norm_(norm), augment_(std::move(augment)) {
  FOCUS_CHECK(norm_.std > 0.f, ValueError, "ImageClassificationData: std {} must be positive",
              norm_.std);
  if (augment_) augment_->validate();
}

Batch ImageClassificationData::batch(std::span<const int64_t> indices, const BatchDraw& draw) const {
  return make_batch(ds_, indices, norm_, draw.train && augment_ ? &*augment_ : nullptr, draw.seed,
                    draw.epoch);
}

// ---- DataLoader ----------------------------------------------------------------------------------

DataLoader::DataLoader(const ImageDataset& ds, std::vector<int64_t> indices, LoaderOptions opt)
    : owned_(std::make_shared<ImageClassificationData>(ds, opt.norm, opt.augment)),
      data_(owned_.get()), indices_(std::move(indices)), opt_(std::move(opt)) {
  init();
}

DataLoader::DataLoader(const ClassificationData& data, std::vector<int64_t> indices,
                       LoaderOptions opt)
    : data_(&data), indices_(std::move(indices)), opt_(std::move(opt)) {
  init();
}

void DataLoader::init() {
  FOCUS_CHECK(opt_.batch_size > 0, ValueError, "DataLoader: batch_size {} must be positive",
              opt_.batch_size);
  for (int64_t i : indices_)
    FOCUS_CHECK(i >= 0 && i < data_->size(), ValueError, "DataLoader: index {} not in [0, {})", i,
                data_->size());
  set_epoch(0);
}

void DataLoader::set_epoch(uint64_t epoch) {
  epoch_ = epoch;
  order_ = indices_;
  if (opt_.shuffle) shuffle_indices(order_, derive_seed(opt_.seed, kShuffleTag, epoch, 0));
}

int64_t DataLoader::num_samples() const {
  const int64_t n = static_cast<int64_t>(indices_.size());
  return opt_.drop_last ? n / opt_.batch_size * opt_.batch_size : n;
}

int64_t DataLoader::num_batches() const {
  return (num_samples() + opt_.batch_size - 1) / opt_.batch_size;
}

Batch DataLoader::batch(int64_t b) const { return batch(b, 0, batch_rows(b)); }

int64_t DataLoader::batch_rows(int64_t b) const {
  FOCUS_CHECK(b >= 0 && b < num_batches(), ValueError, "DataLoader: batch {} not in [0, {})", b,
              num_batches());
  return std::min(opt_.batch_size, num_samples() - b * opt_.batch_size);
}

Batch DataLoader::batch(int64_t b, int64_t lo, int64_t hi) const {
  const int64_t len = batch_rows(b);
  FOCUS_CHECK(0 <= lo && lo <= hi && hi <= len, ValueError,
              "DataLoader: rows [{}, {}) of batch {} (it has {} rows)", lo, hi, b, len);
  const int64_t start = b * opt_.batch_size + lo;
  return data_->batch(std::span<const int64_t>(order_).subspan(start, hi - lo),
                      BatchDraw{true, opt_.seed, epoch_});
}

}  // namespace focus
