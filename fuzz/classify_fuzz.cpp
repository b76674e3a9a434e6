// Fuzz target: the classify request decoder (serve/decode.hpp decode_classify, the body of
// POST /v1/models/{m}/classify: a PNG, or JSON with base64 PNGs, any Content-Type, any ?top=) and
// base64 itself. A request either decodes to 1..max_items images of 1 or 3 channels, at most
// max_image_pixels each, values finite in [0, 1], top in [1, 1000], or is a RequestError
// (400/413/415). Input: "<content-type>\n<top>\n<body>" (see serve_input.hpp). Seeds:
// fuzz/corpus/classify_fuzz/ (PNG bodies, JSON with one and several base64 PNGs).
#include <cmath>
#include <cstdint>

#include "focus/io/base64.hpp"
#include "serve_input.hpp"

using namespace focus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::ServeInput in = fuzz::split_serve_input(data, size);
  for (const DecodeLimits& lim : {DecodeLimits{}, fuzz::small_limits()}) {
    ClassifyRequest r;
    if (!fuzz::serve_accepts([&] { r = decode_classify(in.body, in.content_type, in.top, lim); }))
      continue;
    FUZZ_ASSERT(!r.images.empty() && static_cast<int64_t>(r.images.size()) <= lim.max_items,
                "%zu images", r.images.size());
    FUZZ_ASSERT(r.top >= 1 && r.top <= 1000, "top %lld", static_cast<long long>(r.top));
    for (const Image& img : r.images) {
      FUZZ_ASSERT((img.channels == 1 || img.channels == 3) && img.height >= 1 && img.width >= 1 &&
                      img.height * img.width <= lim.max_image_pixels &&
                      img.data.size() == static_cast<size_t>(img.channels * img.height * img.width),
                  "image (%lld, %lld, %lld) with %zu values", static_cast<long long>(img.channels),
                  static_cast<long long>(img.height), static_cast<long long>(img.width),
                  img.data.size());
      for (float v : img.data) FUZZ_ASSERT(std::isfinite(v) && v >= 0.f && v <= 1.f, "value %g", v);
    }
  }
  // base64: what encode writes, decode reads back exactly.
  const std::string body(in.body.substr(0, 256));
  FUZZ_ASSERT(base64_decode(base64_encode(body)) == body, "base64 does not round-trip");
  return 0;
}
