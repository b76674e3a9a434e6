// Tokenizers: text <-> int64 ids over a Vocab. Three kinds:
//   "char": one token per UTF-8 code point (whitespace included); decode concatenates.
//   "word": tokens are runs of non-whitespace (ASCII whitespace separates); decode joins with one
//           space. Used for phone sequences ("HH AH0 L OW1").
//   "bpe":  byte-pair encoding (Sennrich et al. 2016) learned from training text: words split on
//           whitespace, each a sequence of code points followed by an end-of-word marker; merges
//           applied in learned order; decode restores the text up to whitespace normalisation.
// encode never adds <s>/</s>; symbols outside the vocabulary (and words spelled like a special
// token) map to Vocab::kUnk. decode skips <pad> and <s>, stops at </s>, prints <unk> as "<unk>".
// A tokenizer is immutable after construction, so encode/decode may run on several threads.
// to_json()/tokenizer_from_json() round-trip exactly; the model file stores this JSON.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/text/vocab.hpp"

namespace focus {

class Tokenizer {
 public:
  virtual ~Tokenizer();
  virtual std::string kind() const = 0;  // "char" | "word" | "bpe"
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;  // ValueError on a bad id
  // The input's symbols (code points for char/bpe, words for word) outside the vocabulary, each
  // once, in order of first appearance; for error messages.
  virtual std::vector<std::string> unknown_symbols(const std::string& text) const = 0;
  virtual nlohmann::json to_json() const = 0;
  const Vocab& vocab() const { return vocab_; }

 protected:
  explicit Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  Vocab vocab_;
};

struct TokenizerOptions {
  int64_t bpe_merges = 8000;  // number of merges learned (fewer when pairs run out)
  // Symbols (chars, words, BPE base chars) seen fewer times are left out (-> <unk>). BPE stops
  // merging when the most frequent pair occurs fewer than max(2, min_count) times.
  int64_t min_count = 1;
};

// Learns a tokenizer of `kind` ("char", "word", "bpe") from `texts` (valid UTF-8, else
// ValueError naming the text). Symbols are ordered by count (descending) then bytes
// (ascending); BPE appends merged symbols in merge order; ties between pairs go to the
// lexicographically smaller (left, right). The result depends only on the multiset of texts.
std::unique_ptr<Tokenizer> train_tokenizer(const std::string& kind,
                                           const std::vector<std::string>& texts,
                                           const TokenizerOptions& opt = {});

// Rebuilds a tokenizer from to_json() output; FormatError naming the missing/bad field.
std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& j);

}  // namespace focus
