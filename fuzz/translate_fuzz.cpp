// Fuzz target: the translate request decoder (serve/decode.hpp decode_translate, the body of
// POST /v1/models/{m}/translate). A body either decodes to 1..max_items texts of at most
// max_text_bytes with search options in range (beam 1..16, nbest 1..beam, max_len 0..4096,
// length_penalty 0..10), or is a RequestError (400/413); allocations stay proportional to the
// body. Seeds: fuzz/corpus/translate_fuzz/; dictionary json.dict.
#include <cstdint>

#include "serve_input.hpp"

using namespace focus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::AllocPeak::install();
  const fuzz::ServeInput in = fuzz::split_serve_input(data, size);
  for (const DecodeLimits& lim : {DecodeLimits{}, fuzz::small_limits()}) {
    TranslateRequest r;
    fuzz::AllocPeak::reset();
    const bool ok = fuzz::serve_accepts([&] { r = decode_translate(in.body, lim); });
    fuzz::check_alloc_proportional(in.body.size(), 64, "decode_translate");
    if (!ok) continue;
    FUZZ_ASSERT(!r.inputs.empty() && static_cast<int64_t>(r.inputs.size()) <= lim.max_items,
                "%zu inputs", r.inputs.size());
    for (const std::string& t : r.inputs)
      FUZZ_ASSERT(static_cast<int64_t>(t.size()) <= lim.max_text_bytes, "a %zu-byte text",
                  t.size());
    const SearchOptions& s = r.search;
    FUZZ_ASSERT(s.beam >= 1 && s.beam <= 16 && s.nbest >= 1 && s.nbest <= s.beam &&
                    s.max_len >= 0 && s.max_len <= 4096 && s.length_penalty >= 0 &&
                    s.length_penalty <= 10,
                "search options beam %lld nbest %lld max_len %lld length_penalty %g",
                static_cast<long long>(s.beam), static_cast<long long>(s.nbest),
                static_cast<long long>(s.max_len), s.length_penalty);
  }
  return 0;
}
