// Float images (channels-first, values in [0, 1]) and the conversions between them and model
// inputs: grayscale conversion, resizing, normalisation into an F32 batch tensor.
// Limits: 1 (gray) or 3 (RGB) channels; resizing is separable, per axis area averaging when the
// axis shrinks (box filter with fractional coverage, like OpenCV's INTER_AREA) and bilinear with
// half-pixel centres when it grows (PyTorch's align_corners=False).
#pragma once
#include <cstdint>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

struct Image {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<float> data;  // (C, H, W) row-major, values in [0, 1]
  float at(int64_t c, int64_t y, int64_t x) const { return data[(c * height + y) * width + x]; }
};

// Per-channel-shared normalisation x -> (x - mean) / std; defaults are Fashion-MNIST's train
// pixel statistics (pixels in [0, 1]).
struct Normalization {
  float mean = 0.2860f;
  float std = 0.3530f;
};

Image make_image(int64_t channels, int64_t height, int64_t width, float fill = 0.f);
// RGB -> gray with the ITU-R 601 luma weights (0.299, 0.587, 0.114), as PIL's convert("L");
// a gray image is returned unchanged.
Image to_gray(const Image& img);
// Resizes to (height, width); the same size returns a copy.
Image resize(const Image& img, int64_t height, int64_t width);
// (C, H, W) image -> normalised F32 tensor (1, C, H, W), ready for a model.
Tensor image_to_tensor(const Image& img, const Normalization& norm);

}  // namespace focus
