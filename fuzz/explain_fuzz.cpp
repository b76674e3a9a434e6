// Fuzz target: the explain request decoder (serve/decode.hpp decode_explain, the body of
// POST /v1/models/{m}/explain) for image and translation models alike. A request either decodes
// (an image model gets an image within max_image_pixels; a translation model a text within
// max_text_bytes; layer and head in [-1, 1024], target in [-1, 2^20]) or is a RequestError
// (400/413/415). Input: "<content-type>\n<unused>\n<body>" (see serve_input.hpp). Seeds:
// fuzz/corpus/explain_fuzz/.
#include <cstdint>

#include "serve_input.hpp"

using namespace focus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::ServeInput in = fuzz::split_serve_input(data, size);
  for (const bool image_model : {true, false}) {
    for (const DecodeLimits& lim : {DecodeLimits{}, fuzz::small_limits()}) {
      ExplainRequest r;
      if (!fuzz::serve_accepts(
              [&] { r = decode_explain(in.body, in.content_type, image_model, lim); }))
        continue;
      if (image_model)
        FUZZ_ASSERT(r.image.height >= 1 && r.image.width >= 1 &&
                        r.image.height * r.image.width <= lim.max_image_pixels &&
                        r.image.data.size() ==
                            static_cast<size_t>(r.image.channels * r.image.height * r.image.width),
                    "image (%lld, %lld, %lld)", static_cast<long long>(r.image.channels),
                    static_cast<long long>(r.image.height), static_cast<long long>(r.image.width));
      else
        FUZZ_ASSERT(static_cast<int64_t>(r.text.size()) <= lim.max_text_bytes && r.image.data.empty(),
                    "a %zu-byte text", r.text.size());
      FUZZ_ASSERT(r.layer >= -1 && r.layer <= 1024 && r.head >= -1 && r.head <= 1024 &&
                      r.target >= -1 && r.target <= (1 << 20),
                  "layer %lld head %lld target %lld", static_cast<long long>(r.layer),
                  static_cast<long long>(r.head), static_cast<long long>(r.target));
    }
  }
  return 0;
}
