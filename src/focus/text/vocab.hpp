// Vocabulary: a bijection between symbol strings and dense int64 ids, with four special ids
// first (<pad> 0, <s> 1, </s> 2, <unk> 3). Limits: symbols are compared as raw bytes; lookups of
// absent symbols return kUnk (use contains() to tell them apart).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace focus {

class Vocab {
 public:
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;
  static constexpr int64_t kNumSpecial = 4;
  static const std::vector<std::string>& special_tokens();  // {"<pad>", "<s>", "</s>", "<unk>"}

  // The specials are prepended to `symbols`; a duplicate (or a special among `symbols`) is a
  // ValueError naming it.
  explicit Vocab(std::vector<std::string> symbols);

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t id(const std::string& symbol) const;  // kUnk when absent
  bool contains(const std::string& symbol) const { return index_.count(symbol) != 0; }
  const std::string& token(int64_t id) const;  // ValueError when id is outside [0, size)
  const std::vector<std::string>& tokens() const { return tokens_; }  // specials included
  // The symbols given to the constructor (tokens() without the specials).
  std::vector<std::string> symbols() const;

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> index_;
};

}  // namespace focus
