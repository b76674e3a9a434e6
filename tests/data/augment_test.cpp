// Augmentation: crop and flip on a hand-made image give the pixels worked out by hand; draws are
// deterministic in (seed, epoch, index) and batches identical with 1 and 2 threads and whatever
// the batch composition; erasing stays within the image and inside the configured ranges.
#include <gtest/gtest.h>

#include <set>

#include "focus/data/augment.hpp"
#include "focus/data/dataset.hpp"
#include "focus/kernels/cpu.hpp"

using namespace focus;

namespace {

std::vector<float> identity_lut() {
  std::vector<float> lut(256);
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<float>(v);
  return lut;
}

// The 4x4 image 1..16 row-major, rendered with parameters p (erase value -1).
std::vector<float> render4(const AugmentParams& p) {
  std::vector<uint8_t> img(16);
  for (int i = 0; i < 16; ++i) img[i] = static_cast<uint8_t>(i + 1);
  std::vector<float> out(16);
  render_augmented(img.data(), out.data(), 1, 4, 4, p, identity_lut().data(), -1.f);
  return out;
}

ImageDataset random_dataset(int64_t n, int64_t h, int64_t w) {
  std::vector<uint8_t> px(static_cast<size_t>(n * 2 * h * w));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(static_cast<uint32_t>(i * 2654435761u) >> 24);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = i % 3;
  return ImageDataset(std::move(px), std::move(labels), 2, h, w, {"a", "b", "c"});
}

}  // namespace

TEST(Augment, CropAndFlipByHand) {
  //  1  2  3  4
  //  5  6  7  8
  //  9 10 11 12
  // 13 14 15 16
  AugmentParams p;
  EXPECT_EQ(render4(p), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}));
  // Crop window one row down, one column left: out(y, x) = in(y + 1, x - 1), zero outside.
  p.shift_y = 1;
  p.shift_x = -1;
  EXPECT_EQ(render4(p), (std::vector<float>{0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 0, 0, 0}));
  // Flip alone mirrors each row.
  p = AugmentParams{};
  p.flip = true;
  EXPECT_EQ(render4(p), (std::vector<float>{4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13}));
  // Crop then flip: torchvision's crop at offset (top 1, left 2) of the 1-padded image gives rows
  // "2 3 4 0"; the flip makes them "0 4 3 2".
  p.shift_y = 0;
  p.shift_x = 1;
  EXPECT_EQ(render4(p), (std::vector<float>{0, 4, 3, 2, 0, 8, 7, 6, 0, 12, 11, 10, 0, 16, 15, 14}));
  // Erasing a 2x1 rectangle at (1, 2) after the crop and flip.
  p.erase = true;
  p.erase_y = 1;
  p.erase_x = 2;
  p.erase_h = 2;
  p.erase_w = 1;
  EXPECT_EQ(render4(p), (std::vector<float>{0, 4, 3, 2, 0, 8, -1, 6, 0, 12, -1, 10, 0, 16, 15, 14}));
}

TEST(Augment, DrawsCoverTheirRanges) {
  AugmentOptions opt;  // pad 2, flip 0.5
  opt.erase_p = 0.5f;
  std::set<int64_t> shifts;
  int flips = 0, erases = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const AugmentParams p = sample_augment(opt, 28, 28, 5, 1, i);
    shifts.insert(p.shift_y);
    shifts.insert(p.shift_x);
    flips += p.flip;
    erases += p.erase;
  }
  EXPECT_EQ(shifts, (std::set<int64_t>{-2, -1, 0, 1, 2}));
  EXPECT_NEAR(flips / double(n), 0.5, 0.03);
  EXPECT_NEAR(erases / double(n), 0.5, 0.03);
  // Disabled transforms never fire.
  AugmentOptions off;
  off.crop_padding = 0;
  off.hflip_p = 0.f;
  for (int i = 0; i < 200; ++i) {
    const AugmentParams p = sample_augment(off, 28, 28, 5, 1, i);
    EXPECT_TRUE(p.shift_x == 0 && p.shift_y == 0 && !p.flip && !p.erase);
  }
  // Same key, same draw; another epoch, another draw.
  const AugmentParams a = sample_augment(opt, 28, 28, 5, 1, 17), b = sample_augment(opt, 28, 28, 5, 1, 17);
  EXPECT_TRUE(a.shift_x == b.shift_x && a.shift_y == b.shift_y && a.flip == b.flip &&
              a.erase == b.erase && a.erase_x == b.erase_x && a.erase_h == b.erase_h);
  int differ = 0;
  for (int i = 0; i < 50; ++i) {
    const AugmentParams e1 = sample_augment(opt, 28, 28, 5, 1, i), e2 = sample_augment(opt, 28, 28, 5, 2, i);
    differ += e1.shift_x != e2.shift_x || e1.shift_y != e2.shift_y || e1.flip != e2.flip;
  }
  EXPECT_GT(differ, 30);
}

TEST(Augment, ErasingStaysInBoundsAndInRange) {
  AugmentOptions opt;
  opt.erase_p = 1.f;
  opt.erase_area_min = 0.05f;
  opt.erase_area_max = 0.4f;
  opt.erase_ratio_min = 0.5f;
  opt.erase_ratio_max = 2.f;
  const int64_t H = 28, W = 20;
  int erased = 0;
  for (int i = 0; i < 2000; ++i) {
    const AugmentParams p = sample_augment(opt, H, W, 9, 0, i);
    if (!p.erase) continue;
    ++erased;
    ASSERT_GE(p.erase_y, 0);
    ASSERT_GE(p.erase_x, 0);
    ASSERT_LE(p.erase_y + p.erase_h, H);
    ASSERT_LE(p.erase_x + p.erase_w, W);
    ASSERT_LT(p.erase_h, H);
    ASSERT_LT(p.erase_w, W);
    // Rounding h and w moves the area and ratio a little: allow one pixel on each side.
    const double area = double(p.erase_h) * p.erase_w / (H * W);
    EXPECT_GE((p.erase_h + 1.0) * (p.erase_w + 1.0) / (H * W), 0.05);
    EXPECT_LE((p.erase_h - 1.0) * (p.erase_w - 1.0) / (H * W), 0.4) << area;
    EXPECT_GE((p.erase_h + 1.0) / std::max<int64_t>(p.erase_w - 1, 1), 0.5);
    EXPECT_LE((p.erase_h - 1.0) / (p.erase_w + 1.0), 2.0);
  }
  EXPECT_GT(erased, 1900);  // rectangles this size fit at the first attempts

  // Rendering changes exactly the rectangle, in both channels.
  const ImageDataset ds = random_dataset(8, H, W);
  std::vector<float> lut = identity_lut(), plain(2 * H * W), out(2 * H * W);
  for (int64_t i = 0; i < 8; ++i) {
    AugmentParams p = sample_augment(opt, H, W, 9, 0, i);
    ASSERT_TRUE(p.erase);
    render_augmented(ds.image(i), out.data(), 2, H, W, p, lut.data(), -3.f);
    p.erase = false;
    render_augmented(ds.image(i), plain.data(), 2, H, W, p, lut.data(), -3.f);
    int64_t changed = 0;
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const int64_t k = (c * H + y) * W + x;
          const bool inside = y >= p.erase_y && y < p.erase_y + p.erase_h && x >= p.erase_x &&
                              x < p.erase_x + p.erase_w;
          EXPECT_EQ(out[k], inside ? -3.f : plain[k]);
          changed += inside;
        }
    EXPECT_EQ(changed, 2 * p.erase_h * p.erase_w);
  }
}

TEST(Augment, BatchesIndependentOfThreadsAndBatchComposition) {
  const ImageDataset ds = random_dataset(300, 28, 28);
  AugmentOptions opt;
  opt.erase_p = 0.5f;
  std::vector<int64_t> idx(300);
  for (int64_t i = 0; i < 300; ++i) idx[i] = (i * 7) % 300;
  const Normalization norm{0.3f, 0.4f};
  const int saved = num_threads();
  set_num_threads(1);
  const Batch one = make_batch(ds, idx, norm, &opt, 42, 3);
  set_num_threads(2);
  const Batch two = make_batch(ds, idx, norm, &opt, 42, 3);
  set_num_threads(saved);
  EXPECT_EQ(one.x.to_vector<float>(), two.x.to_vector<float>());
  // Sample 5 of the batch alone gives the same row: its draw depends on its dataset index only.
  const Batch alone = make_batch(ds, std::vector<int64_t>{idx[5]}, norm, &opt, 42, 3);
  const auto row = alone.x.to_vector<float>(), all = one.x.to_vector<float>();
  const size_t D = 2 * 28 * 28;
  EXPECT_TRUE(std::equal(row.begin(), row.end(), all.begin() + 5 * D));
  // Another epoch changes the batch; no augmentation gives plain normalisation.
  EXPECT_NE(make_batch(ds, idx, norm, &opt, 42, 4).x.to_vector<float>(), one.x.to_vector<float>());
  const auto plain = make_batch(ds, std::vector<int64_t>{7}, norm).x.to_vector<float>();
  for (size_t k = 0; k < D; ++k)
    ASSERT_NEAR(plain[k], (ds.image(7)[k] / 255.f - 0.3f) / 0.4f, 1e-6);
}

TEST(Augment, ValidatesOptions) {
  AugmentOptions o;
  o.crop_padding = -1;
  EXPECT_THROW(o.validate(), ValueError);
  o = {};
  o.erase_p = -0.1f;
  EXPECT_THROW(o.validate(), ValueError);
  o = {};
  o.erase_area_min = 0.5f;
  o.erase_area_max = 0.2f;
  EXPECT_THROW(o.validate(), ValueError);
  o = {};
  o.erase_ratio_min = 0.f;
  EXPECT_THROW(o.validate(), ValueError);
  EXPECT_NO_THROW(AugmentOptions{}.validate());
}
