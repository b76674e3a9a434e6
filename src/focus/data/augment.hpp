// Training-time augmentation for small images, the torchvision pipeline
//   RandomCrop(size, padding=pad) -> RandomHorizontalFlip(p) -> ToTensor -> Normalize -> RandomErasing
// fused into one pass from uint8 pixels to normalised floats. Every random draw of a sample comes
// from a counter-based generator keyed by (seed, epoch, dataset index), so an epoch's augmented
// batches do not depend on the thread count, the batch size or the order samples are visited.
// Limits: the crop keeps the input size (padding with zero pixels); erasing fills a constant in
// normalised space (torchvision's value=0 default), not random noise.
#pragma once
#include <cstdint>

namespace focus {

struct AugmentOptions {
  int64_t crop_padding = 2;  // random crop after zero padding on each side; 0 disables
  float hflip_p = 0.5f;      // probability of a horizontal flip
  float erase_p = 0.f;       // probability of random erasing; 0 disables
  float erase_area_min = 0.02f, erase_area_max = 0.33f;  // erased fraction of the image area
  float erase_ratio_min = 0.3f, erase_ratio_max = 3.3f;  // aspect ratio h/w, drawn log-uniform
  float erase_value = 0.f;   // value written, in normalised space
  void validate() const;     // ValueError on out-of-range settings
};

// One sample's draw. Output pixel (y, x) reads input (y + shift_y, flip ? W-1-x+shift_x :
// x+shift_x), zero outside; then the rectangle [erase_y, +erase_h) x [erase_x, +erase_w) of
// every channel is set to erase_value when `erase`.
struct AugmentParams {
  int64_t shift_y = 0, shift_x = 0;  // in [-pad, pad]
  bool flip = false;
  bool erase = false;
  int64_t erase_y = 0, erase_x = 0, erase_h = 0, erase_w = 0;
};

// A 64-bit key for the independent random stream `tag` of (seed, epoch, index).
uint64_t derive_seed(uint64_t seed, uint32_t tag, uint64_t epoch, uint64_t index);

// Draws the parameters of dataset sample `index` in `epoch` for an H x W image.
AugmentParams sample_augment(const AugmentOptions& opt, int64_t height, int64_t width,
                             uint64_t seed, uint64_t epoch, uint64_t index);

// Writes dst (C, H, W) floats = lut[src pixel] moved by p (lut[0] where the crop reads padding),
// then erasing. lut has 256 entries: the normalised value of each uint8 pixel. Identity
// parameters give plain normalisation.
void render_augmented(const uint8_t* src, float* dst, int64_t channels, int64_t height,
                      int64_t width, const AugmentParams& p, const float* lut, float erase_value);

}  // namespace focus
