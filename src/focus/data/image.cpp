// Float image helpers (see image.hpp). Resizing builds, for each axis, the list of (source index,
// weight) taps of every output index, then filters rows and columns separately.
#include "focus/data/image.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace focus {
namespace {

using Taps = std::vector<std::vector<std::pair<int64_t, float>>>;  // per output index

// Area: output i covers source [i * s, (i + 1) * s) with s = in / out; each source pixel j
// weighs its overlap with that interval, divided by s.
Taps area_taps(int64_t in, int64_t out) {
  Taps taps(static_cast<size_t>(out));
  const double s = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t i = 0; i < out; ++i) {
    const double lo = i * s, hi = (i + 1) * s;
    for (int64_t j = static_cast<int64_t>(std::floor(lo)); j < in && j < hi; ++j) {
      const double overlap = std::min<double>(hi, j + 1) - std::max<double>(lo, j);
      if (overlap > 1e-12) taps[i].push_back({j, static_cast<float>(overlap / s)});
    }
  }
  return taps;
}

// Bilinear with half-pixel centres: source coordinate (i + 0.5) * in / out - 0.5, clamped.
Taps bilinear_taps(int64_t in, int64_t out) {
  Taps taps(static_cast<size_t>(out));
  const double s = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t i = 0; i < out; ++i) {
    const double src = std::clamp((i + 0.5) * s - 0.5, 0.0, static_cast<double>(in - 1));
    const int64_t j0 = static_cast<int64_t>(std::floor(src));
    const int64_t j1 = std::min(j0 + 1, in - 1);
    const float f = static_cast<float>(src - j0);
    taps[i].push_back({j0, 1.f - f});
    if (j1 != j0) taps[i].push_back({j1, f});
  }
  return taps;
}

Taps axis_taps(int64_t in, int64_t out) { return out <= in ? area_taps(in, out) : bilinear_taps(in, out); }

}  // namespace

Image make_image(int64_t channels, int64_t height, int64_t width, float fill) {
  FOCUS_CHECK(channels > 0 && height > 0 && width > 0, ShapeError,
              "make_image: bad size (C={}, H={}, W={})", channels, height, width);
  Image img{channels, height, width, {}};
  img.data.assign(static_cast<size_t>(channels * height * width), fill);
  return img;
}

Image to_gray(const Image& img) {
  if (img.channels == 1) return img;
  FOCUS_CHECK(img.channels == 3, ShapeError, "to_gray: {} channels (need 1 or 3)", img.channels);
  Image out = make_image(1, img.height, img.width);
  const int64_t n = img.height * img.width;
  const float* r = img.data.data();
  for (int64_t i = 0; i < n; ++i)
    out.data[i] = 0.299f * r[i] + 0.587f * r[n + i] + 0.114f * r[2 * n + i];
  return out;
}

Image resize(const Image& img, int64_t height, int64_t width) {
  FOCUS_CHECK(height > 0 && width > 0, ShapeError, "resize: target ({}, {}) must be positive",
              height, width);
  FOCUS_CHECK(img.channels > 0 && img.height > 0 && img.width > 0 &&
                  img.data.size() == static_cast<size_t>(img.channels * img.height * img.width),
              ShapeError, "resize: malformed image (C={}, H={}, W={}, {} values)", img.channels,
              img.height, img.width, img.data.size());
  if (height == img.height && width == img.width) return img;
  const Taps ty = axis_taps(img.height, height), tx = axis_taps(img.width, width);
  const int64_t C = img.channels, W0 = img.width;
  Image rows = make_image(C, height, W0);  // (C, height, W0): filtered along y
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < height; ++y) {
      float* dst = rows.data.data() + (c * height + y) * W0;
      for (const auto& [j, w] : ty[y]) {
        const float* src = img.data.data() + (c * img.height + j) * W0;
        for (int64_t x = 0; x < W0; ++x) dst[x] += w * src[x];
      }
    }
  Image out = make_image(C, height, width);  // (C, height, width)
  for (int64_t r = 0; r < C * height; ++r) {
    const float* src = rows.data.data() + r * W0;
    float* dst = out.data.data() + r * width;
    for (int64_t x = 0; x < width; ++x) {
      float acc = 0.f;
      for (const auto& [j, w] : tx[x]) acc += w * src[j];
      dst[x] = acc;
    }
  }
  return out;
}

Tensor image_to_tensor(const Image& img, const Normalization& norm) {
  FOCUS_CHECK(norm.std > 0.f, ValueError, "image_to_tensor: std {} must be positive", norm.std);
  FOCUS_CHECK(img.data.size() == static_cast<size_t>(img.channels * img.height * img.width) &&
                  !img.data.empty(),
              ShapeError, "image_to_tensor: malformed image (C={}, H={}, W={}, {} values)",
              img.channels, img.height, img.width, img.data.size());
  Tensor t = Tensor::empty({1, img.channels, img.height, img.width});  // (1, C, H, W)
  float* dst = t.data<float>();
  const float inv = 1.f / norm.std;
  for (size_t i = 0; i < img.data.size(); ++i) dst[i] = (img.data[i] - norm.mean) * inv;
  return t;
}

}  // namespace focus
