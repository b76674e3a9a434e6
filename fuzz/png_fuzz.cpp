// Fuzz target: the PNG decoder (data/png.hpp decode_png, behind read_png and the classify
// endpoint's image/png bodies) and the model-input view a classify request makes of it (to_gray,
// resize to 28x28). Either an image of 1 or 3 channels, 1..16384 pixels a side, C*H*W finite
// values in [0, 1], or a FormatError naming the input. Seeds: fuzz/corpus/png_fuzz/ (every colour
// type and bit depth, interlaced, tRNS); dictionary fuzz/dicts/png.dict (chunk names).
#include <cmath>
#include <cstdint>
#include <string_view>

#include "focus/data/png.hpp"
#include "fuzz_check.hpp"

using namespace focus;

namespace {

void check_image(const Image& img, const char* stage, int64_t channels, int64_t h, int64_t w) {
  FUZZ_ASSERT(img.channels == channels && img.height == h && img.width == w,
              "%s: (%lld, %lld, %lld), expected (%lld, %lld, %lld)", stage,
              static_cast<long long>(img.channels), static_cast<long long>(img.height),
              static_cast<long long>(img.width), static_cast<long long>(channels),
              static_cast<long long>(h), static_cast<long long>(w));
  FUZZ_ASSERT(img.data.size() == static_cast<size_t>(channels * h * w), "%s: %zu values", stage,
              img.data.size());
  for (float v : img.data)
    FUZZ_ASSERT(std::isfinite(v) && v >= -1e-6f && v <= 1.f + 1e-6f, "%s: value %g", stage, v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Image img;
  if (!fuzz::accepts<FormatError>([&] { img = decode_png(bytes, "fuzz-input"); }, "fuzz-input"))
    return 0;
  FUZZ_ASSERT(img.channels == 1 || img.channels == 3, "%lld channels",
              static_cast<long long>(img.channels));
  FUZZ_ASSERT(img.height >= 1 && img.height <= 16384 && img.width >= 1 && img.width <= 16384,
              "%lld x %lld", static_cast<long long>(img.height), static_cast<long long>(img.width));
  check_image(img, "decode_png", img.channels, img.height, img.width);
  const Image gray = to_gray(img);
  check_image(gray, "to_gray", 1, img.height, img.width);
  check_image(resize(gray, 28, 28), "resize", 1, 28, 28);
  return 0;
}
