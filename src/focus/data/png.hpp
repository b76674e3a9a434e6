// PNG input and output with libpng. Reading accepts every PNG colour type (gray, gray+alpha,
// RGB, RGBA, palette, with or without tRNS) at bit depths 1..16 and returns a float image in
// [0, 1]: 1 channel for gray sources, 3 for colour ones; alpha is composited over black (the
// Fashion-MNIST background). Writing takes a 1- or 3-channel image, stores 8-bit gray or RGB, and
// is atomic (temporary file in the same directory, then rename).
// Limits: gamma, colour profiles, text and every other ancillary chunk but tRNS are skipped
// unread (so a chunk's claimed length is never allocated); images above 16384 pixels on a side
// are refused, and so is a header claiming more pixel data than the file can hold at deflate's
// 1032:1 (before anything is allocated). A corrupt or truncated file is a FormatError naming it;
// an unreadable one IOError.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "focus/data/image.hpp"

namespace focus {

// An image over the caller's pixel limit (decode_png's max_pixels), refused from its header before
// any pixel memory is allocated. A FormatError, so a caller that treats every bad PNG alike still
// catches it; a server can answer it 413 instead of 400.
struct ImageTooLargeError : FormatError {
  using FormatError::FormatError;
};

// The largest image read_png accepts: 16384 pixels a side.
inline constexpr int64_t kMaxPngPixels = int64_t(16384) * 16384;

Image read_png(const std::string& path);
// The same decoder on PNG bytes in memory (an HTTP body); `what` starts every error message.
// Images of more than `max_pixels` (width x height) are an ImageTooLargeError "<what>: WxH pixels,
// over the limit of N pixels", decided from the header: a 33 KB PNG can hold 16384x16384 pixels
// (3 GB as floats), so code decoding untrusted bytes passes its own, smaller limit.
Image decode_png(std::string_view bytes, const std::string& what = "png",
                 int64_t max_pixels = kMaxPngPixels);
// The model-input view of a PNG: grayscale, resized to (height, width) (area when shrinking,
// bilinear when growing), values in [0, 1]; shape (1, height, width).
Image read_png_gray(const std::string& path, int64_t height = 28, int64_t width = 28);
// 8-bit gray or RGB PNG bytes of a 1- or 3-channel image (ShapeError for another).
std::string encode_png(const Image& img);
// Values are clamped to [0, 1] and rounded to 8 bits; written atomically.
void write_png(const std::string& path, const Image& img);

}  // namespace focus
