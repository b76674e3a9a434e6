// Fuzz target: the recommend request decoder (serve/decode.hpp decode_recommend, the body of
// POST /v1/models/{m}/recommend). A body either decodes to a history of 1..max_items item ids,
// each a non-empty string of at most max_text_bytes (integers come back as their decimal text),
// and k in 1..1000, or is a RequestError (400/413); allocations stay proportional to the body.
// Seeds: fuzz/corpus/recommend_fuzz/; dictionary json.dict.
#include <cstdint>

#include "serve_input.hpp"

using namespace focus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::AllocPeak::install();
  const fuzz::ServeInput in = fuzz::split_serve_input(data, size);
  for (const DecodeLimits& lim : {DecodeLimits{}, fuzz::small_limits()}) {
    RecommendRequest r;
    fuzz::AllocPeak::reset();
    const bool ok = fuzz::serve_accepts([&] { r = decode_recommend(in.body, lim); });
    fuzz::check_alloc_proportional(in.body.size(), 64, "decode_recommend");
    if (!ok) continue;
    FUZZ_ASSERT(!r.history.empty() && static_cast<int64_t>(r.history.size()) <= lim.max_items,
                "%zu history items", r.history.size());
    for (const std::string& id : r.history)
      FUZZ_ASSERT(!id.empty() && static_cast<int64_t>(id.size()) <= std::max<int64_t>(lim.max_text_bytes, 24),
                  "an item id of %zu bytes", id.size());
    FUZZ_ASSERT(r.k >= 1 && r.k <= 1000, "k %lld", static_cast<long long>(r.k));
  }
  return 0;
}
