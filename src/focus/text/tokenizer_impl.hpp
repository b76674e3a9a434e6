// Internal to the text layer: helpers shared by tokenizer.cpp and bpe.cpp, and the BPE entry
// points that train_tokenizer / tokenizer_from_json dispatch to. Not part of the public API.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus::text_detail {

// Calls emit(token) for each id up to the first </s>, skipping <pad> and <s>; ValueError on an
// id outside the vocabulary.
template <class F>
void for_each_output_token(const Vocab& v, const std::vector<int64_t>& ids, F&& emit) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    FOCUS_CHECK(id >= 0 && id < v.size(), ValueError,
                "Tokenizer::decode: id {} at position {} outside the vocabulary [0, {})", id, i,
                v.size());
    if (id == Vocab::kEos) return;
    if (id == Vocab::kPad || id == Vocab::kBos) continue;
    emit(v.token(id));
  }
}

// The id of a symbol, kUnk when absent or when it is spelled like a special token.
inline int64_t symbol_id(const Vocab& v, const std::string& s) {
  const int64_t id = v.id(s);
  return id < Vocab::kNumSpecial ? Vocab::kUnk : id;
}

// Keys with count >= min_count, by count descending then bytes ascending; specials left out.
std::vector<std::string> sorted_by_count(const std::unordered_map<std::string, int64_t>& counts,
                                         int64_t min_count);

// ValueError naming the first text that is not valid UTF-8.
void check_utf8(const std::vector<std::string>& texts, const std::string& kind);

// Field accessors raising FormatError("tokenizer JSON: ...") naming the field.
const nlohmann::json& field(const nlohmann::json& j, const char* name);
std::vector<std::string> string_array(const nlohmann::json& j, const char* name);
// Vocab(symbols) with a duplicate reported as a FormatError.
Vocab vocab_from_json(const nlohmann::json& j);

std::unique_ptr<Tokenizer> train_bpe(const std::vector<std::string>& texts,
                                     const TokenizerOptions& opt);
std::unique_ptr<Tokenizer> bpe_from_json(const nlohmann::json& j);

}  // namespace focus::text_detail
