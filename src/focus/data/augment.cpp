// Augmentation draws and the fused crop/flip/normalise/erase pass (see augment.hpp).
#include "focus/data/augment.hpp"

#include <algorithm>
#include <cmath>

#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {
namespace {
constexpr uint32_t kAugmentTag = 0xA06u;
constexpr int kEraseAttempts = 10;  // as torchvision: give up (no erasing) after 10 misses
}  // namespace

void AugmentOptions::validate() const {
  FOCUS_CHECK(crop_padding >= 0, ValueError, "augment: crop_padding {} must be >= 0", crop_padding);
  FOCUS_CHECK(hflip_p >= 0.f && hflip_p <= 1.f, ValueError, "augment: hflip_p {} not in [0, 1]",
              hflip_p);
  FOCUS_CHECK(erase_p >= 0.f && erase_p <= 1.f, ValueError, "augment: erase_p {} not in [0, 1]",
              erase_p);
  FOCUS_CHECK(erase_area_min > 0.f && erase_area_min <= erase_area_max && erase_area_max <= 1.f,
              ValueError, "augment: erase area range [{}, {}] must satisfy 0 < min <= max <= 1",
              erase_area_min, erase_area_max);
  FOCUS_CHECK(erase_ratio_min > 0.f && erase_ratio_min <= erase_ratio_max, ValueError,
              "augment: erase ratio range [{}, {}] must satisfy 0 < min <= max", erase_ratio_min,
              erase_ratio_max);
}

uint64_t derive_seed(uint64_t seed, uint32_t tag, uint64_t epoch, uint64_t index) {
  const auto r = philox4x32(seed, (static_cast<uint64_t>(tag) << 32) ^ epoch, index);
  return (static_cast<uint64_t>(r[0]) << 32) | r[1];
}

AugmentParams sample_augment(const AugmentOptions& opt, int64_t height, int64_t width,
                             uint64_t seed, uint64_t epoch, uint64_t index) {
  Rng rng(derive_seed(seed, kAugmentTag, epoch, index));
  AugmentParams p;
  // The draws happen in a fixed order whatever the options, so enabling one transform does not
  // change the others' draws.
  const int64_t pad = opt.crop_padding;
  const int64_t sy = rng.randint(2 * pad + 1), sx = rng.randint(2 * pad + 1);
  p.shift_y = sy - pad;
  p.shift_x = sx - pad;
  p.flip = rng.uniform() < opt.hflip_p;
  if (!(rng.uniform() < opt.erase_p)) return p;
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(opt.erase_ratio_min), log_hi = std::log(opt.erase_ratio_max);
  for (int attempt = 0; attempt < kEraseAttempts; ++attempt) {
    const double target = area * (opt.erase_area_min +
                                  (opt.erase_area_max - opt.erase_area_min) * rng.uniform());
    const double ratio = std::exp(log_lo + (log_hi - log_lo) * rng.uniform());
    const int64_t h = std::llround(std::sqrt(target * ratio));
    const int64_t w = std::llround(std::sqrt(target / ratio));
    if (!(h < height && w < width)) continue;
    p.erase = true;
    p.erase_h = h;
    p.erase_w = w;
    p.erase_y = rng.randint(height - h + 1);
    p.erase_x = rng.randint(width - w + 1);
    break;
  }
  return p;
}

void render_augmented(const uint8_t* src, float* dst, int64_t channels, int64_t height,
                      int64_t width, const AugmentParams& p, const float* lut, float erase_value) {
  const float zero = lut[0];
  for (int64_t c = 0; c < channels; ++c) {
    const uint8_t* s = src + c * height * width;
    float* d = dst + c * height * width;
    for (int64_t y = 0; y < height; ++y) {
      float* row = d + y * width;
      const int64_t iy = y + p.shift_y;
      if (iy < 0 || iy >= height) {
        std::fill(row, row + width, zero);
        continue;
      }
      // Output x reads input x0 + step * x (mirrored when flipping), padding outside [0, W).
      const uint8_t* in = s + iy * width;
      const int64_t x0 = p.flip ? width - 1 + p.shift_x : p.shift_x, step = p.flip ? -1 : 1;
      for (int64_t x = 0; x < width; ++x) {
        const int64_t ix = x0 + step * x;
        row[x] = (ix >= 0 && ix < width) ? lut[in[ix]] : zero;
      }
    }
    if (p.erase)
      for (int64_t y = p.erase_y; y < p.erase_y + p.erase_h; ++y)
        std::fill(d + y * width + p.erase_x, d + y * width + p.erase_x + p.erase_w, erase_value);
  }
}

}  // namespace focus
