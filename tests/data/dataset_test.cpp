// Datasets, the stratified split and the DataLoader: the split is deterministic, disjoint and
// stratified; an epoch's order is a deterministic permutation of (seed, epoch); batches hold the
// normalised pixels computed independently here; bad arguments throw typed errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "focus/data/dataset.hpp"

using namespace focus;

namespace {

// N samples of 3x4 pixels, unbalanced classes: label = (i * i) % 5 over 5 classes.
// Pixel k of sample i is (7 * i + 13 * k) % 256.
ImageDataset synthetic(int64_t n) {
  std::vector<uint8_t> px(static_cast<size_t>(n * 12));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = (i * i) % 5;
    for (int64_t k = 0; k < 12; ++k) px[i * 12 + k] = static_cast<uint8_t>((7 * i + 13 * k) % 256);
  }
  return ImageDataset(std::move(px), std::move(labels), 1, 3, 4, {"a", "b", "c", "d", "e"});
}

}  // namespace

TEST(Dataset, ValidatesConstruction) {
  EXPECT_THROW(ImageDataset(std::vector<uint8_t>(11), {0}, 1, 3, 4, {"a"}), ShapeError);
  EXPECT_THROW(ImageDataset(std::vector<uint8_t>(12), {1}, 1, 3, 4, {"a"}), ValueError);
  EXPECT_THROW(ImageDataset(std::vector<uint8_t>(12), {0}, 1, 3, 4, {}), ValueError);
  const ImageDataset ds = synthetic(10);
  EXPECT_THROW(ds.image(10), ValueError);
  EXPECT_THROW(ds.label(-1), ValueError);
  EXPECT_EQ(ds.shape(), (Shape{10, 1, 3, 4}));
  EXPECT_FLOAT_EQ(ds.image_at(2).at(0, 1, 1), ((14 + 13 * 5) % 256) / 255.f);
  EXPECT_EQ(parse_split("test"), Split::Test);
  EXPECT_THROW(parse_split("valid"), ValueError);
}

TEST(Dataset, PixelStatsMatchNaiveSums) {
  const ImageDataset ds = synthetic(97);
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < 97 * 12; ++i) {
    const double v = ds.pixels()[i] / 255.0;
    s += v;
    s2 += v * v;
  }
  const double mean = s / (97 * 12), var = s2 / (97 * 12) - mean * mean;
  const Normalization st = ds.pixel_stats();
  EXPECT_NEAR(st.mean, mean, 1e-6);
  EXPECT_NEAR(st.std, std::sqrt(var), 1e-6);
}

TEST(Split, DeterministicDisjointStratified) {
  const ImageDataset ds = synthetic(1000);
  const TrainValSplit a = split_train_val(ds, 150, 7), b = split_train_val(ds, 150, 7);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_NE(split_train_val(ds, 150, 8).val, a.val);
  ASSERT_EQ(a.val.size(), 150u);
  ASSERT_EQ(a.train.size(), 850u);
  EXPECT_TRUE(std::is_sorted(a.val.begin(), a.val.end()));
  std::vector<int64_t> all = a.train;
  all.insert(all.end(), a.val.begin(), a.val.end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expect(1000);
  std::iota(expect.begin(), expect.end(), 0);
  EXPECT_EQ(all, expect);  // disjoint and covering
  // Each class gives floor or ceil of its proportional share.
  const auto counts = ds.class_counts();
  std::vector<int64_t> val_counts(5, 0);
  for (int64_t i : a.val) ++val_counts[ds.label(i)];
  for (int c = 0; c < 5; ++c) {
    const double share = 150.0 * counts[c] / 1000.0;
    EXPECT_GE(val_counts[c], std::floor(share)) << c;
    EXPECT_LE(val_counts[c], std::ceil(share)) << c;
  }
  EXPECT_TRUE(split_train_val(ds, 0).val.empty());
  EXPECT_THROW(split_train_val(ds, 1000), ValueError);
  EXPECT_THROW(split_train_val(ds, -1), ValueError);
}

// count: only the first `count` samples are split (the reviewed images appended after them by
// `focus train --extra-labels` stay out), exactly as if the dataset ended there.
TEST(Split, CountSplitsAPrefixAsIfTheDatasetEndedThere) {
  const ImageDataset small = synthetic(700), big = synthetic(1000);  // big's first 700 are small's
  const TrainValSplit a = split_train_val(small, 150, 7), b = split_train_val(big, 150, 7, 700);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_NE(split_train_val(big, 150, 7).val, b.val);  // the whole of big splits differently
  EXPECT_EQ(split_train_val(big, 150, 7, 1000).val, split_train_val(big, 150, 7).val);
  EXPECT_THROW(split_train_val(big, 150, 7, 1001), ValueError);
  EXPECT_THROW(split_train_val(big, 150, 7, 150), ValueError);  // val_size must be < count
}

TEST(Loader, ShuffleIsADeterministicPermutationPerEpoch) {
  const ImageDataset ds = synthetic(300);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < 300; i += 3) idx.push_back(i);  // 100 samples
  LoaderOptions opt;
  opt.batch_size = 32;
  opt.shuffle = true;
  opt.seed = 11;
  DataLoader a(ds, idx, opt), b(ds, idx, opt);
  a.set_epoch(3);
  b.set_epoch(3);
  EXPECT_EQ(a.order(), b.order());
  std::vector<int64_t> sorted = a.order();
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, idx);
  EXPECT_NE(a.order(), idx);
  const std::vector<int64_t> epoch3 = a.order();
  a.set_epoch(4);
  EXPECT_NE(a.order(), epoch3);
  a.set_epoch(3);
  EXPECT_EQ(a.order(), epoch3);  // going back reproduces the epoch
  opt.seed = 12;
  DataLoader c(ds, idx, opt);
  c.set_epoch(3);
  EXPECT_NE(c.order(), epoch3);
  opt.shuffle = false;
  DataLoader d(ds, idx, opt);
  d.set_epoch(5);
  EXPECT_EQ(d.order(), idx);

  // Batches follow the order; the last one is partial unless drop_last.
  EXPECT_EQ(a.num_batches(), 4);
  EXPECT_EQ(a.batch(3).x.shape(), (Shape{4, 1, 3, 4}));
  std::vector<int64_t> seen;
  for (int64_t bi = 0; bi < a.num_batches(); ++bi) {
    const Batch bt = a.batch(bi);
    seen.insert(seen.end(), bt.indices.begin(), bt.indices.end());
  }
  EXPECT_EQ(seen, epoch3);
  opt.drop_last = true;
  DataLoader e(ds, idx, opt);
  EXPECT_EQ(e.num_batches(), 3);
  EXPECT_EQ(e.num_samples(), 96);
  EXPECT_THROW(e.batch(3), ValueError);

  // Rows of a batch (a data-parallel rank's share) are those rows of the whole batch, augmented
  // the same way.
  opt.augment = AugmentOptions{};
  DataLoader f(ds, idx, opt);
  f.set_epoch(2);
  const Batch whole = f.batch(1), part = f.batch(1, 10, 26);
  EXPECT_EQ(f.batch_rows(1), 32);
  ASSERT_EQ(part.x.shape(), (Shape{16, 1, 3, 4}));
  EXPECT_EQ(part.x.to_vector<float>(), whole.x.slice(0, 10, 26).contiguous().to_vector<float>());
  EXPECT_EQ(part.y.to_vector<int64_t>(), whole.y.slice(0, 10, 26).contiguous().to_vector<int64_t>());
  EXPECT_EQ(f.batch(1, 5, 5).x.size(0), 0);
  EXPECT_THROW(f.batch(1, 20, 33), ValueError);
  EXPECT_THROW(f.batch(1, 5, 4), ValueError);
}

TEST(Loader, BatchHoldsNormalisedPixelsAndLabels) {
  const ImageDataset ds = synthetic(50);
  const Normalization norm{0.25f, 0.5f};
  const std::vector<int64_t> idx = {4, 17, 0, 49};
  const Batch bt = make_batch(ds, idx, norm);
  ASSERT_EQ(bt.x.shape(), (Shape{4, 1, 3, 4}));
  ASSERT_EQ(bt.y.dtype(), DType::I64);
  const float* x = bt.x.data<float>();
  for (size_t b = 0; b < idx.size(); ++b) {
    EXPECT_EQ(bt.y.data<int64_t>()[b], (idx[b] * idx[b]) % 5);
    for (int k = 0; k < 12; ++k) {
      const float raw = ((7 * idx[b] + 13 * k) % 256) / 255.f;
      EXPECT_NEAR(x[b * 12 + k], (raw - 0.25f) / 0.5f, 1e-6);
    }
  }
  EXPECT_THROW(make_batch(ds, std::vector<int64_t>{50}, norm), ValueError);
  EXPECT_THROW(make_batch(ds, idx, Normalization{0.f, 0.f}), ValueError);
  LoaderOptions bad;
  bad.batch_size = 0;
  EXPECT_THROW(DataLoader(ds, idx, bad), ValueError);
  LoaderOptions bad_aug;
  bad_aug.augment = AugmentOptions{};
  bad_aug.augment->hflip_p = 1.5f;
  EXPECT_THROW(DataLoader(ds, idx, bad_aug), ValueError);
}
