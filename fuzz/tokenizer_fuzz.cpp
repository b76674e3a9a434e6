// Fuzz target: the tokenizer JSON of seq2seq model files (text/tokenizer.hpp tokenizer_from_json,
// the "src_tokenizer" / "tgt_tokenizer" metadata that load_seq2seq reads). Bytes in, parsed as
// JSON (unparsable text stops there, as in the loader); then either a tokenizer or a FormatError
// naming the field. An accepted tokenizer must round-trip through to_json() exactly, encode the
// probe texts to ids within its vocabulary, and decode those ids without throwing.
// Seeds: fuzz/corpus/tokenizer_fuzz/ (char, word and bpe tokenizers); dictionary json.dict.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "focus/text/tokenizer.hpp"
#include "fuzz_check.hpp"

using namespace focus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // load_seq2seq parses with exceptions and turns them into "corrupt model metadata"; here a text
  // that is not JSON is simply not interesting.
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  std::unique_ptr<Tokenizer> tok;
  if (!fuzz::accepts<FormatError>([&] { tok = tokenizer_from_json(j); }, "tokenizer JSON"))
    return 0;

  const nlohmann::json again = tok->to_json();
  const std::unique_ptr<Tokenizer> back = tokenizer_from_json(again);
  FUZZ_ASSERT(back->to_json() == again && back->kind() == tok->kind(),
              "to_json does not round-trip: %s", again.dump().substr(0, 200).c_str());
  const int64_t V = tok->vocab().size();
  for (const std::string& probe : {std::string("hello world"), std::string("HH AH0 L OW1"),
                                  std::string("\xc3\xa9t\xc3\xa9 \xe2\x82\xac"), text.substr(0, 64)}) {
    const std::vector<int64_t> ids = tok->encode(probe);
    for (int64_t id : ids) FUZZ_ASSERT(id >= 0 && id < V, "id %lld outside a vocabulary of %lld",
                                       static_cast<long long>(id), static_cast<long long>(V));
    FUZZ_ASSERT(back->encode(probe) == ids, "the round-tripped tokenizer encodes differently");
    (void)tok->decode(ids);
    (void)tok->unknown_symbols(probe);
  }
  return 0;
}
