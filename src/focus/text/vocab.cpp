// Vocab (see vocab.hpp).
#include "focus/text/vocab.hpp"

#include "focus/tensor/error.hpp"

namespace focus {

const std::vector<std::string>& Vocab::special_tokens() {
  static const std::vector<std::string> specials = {"<pad>", "<s>", "</s>", "<unk>"};
  return specials;
}

Vocab::Vocab(std::vector<std::string> symbols) {
  tokens_ = special_tokens();
  tokens_.reserve(symbols.size() + kNumSpecial);
  for (auto& s : symbols) tokens_.push_back(std::move(s));
  index_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const auto [it, fresh] = index_.emplace(tokens_[i], static_cast<int64_t>(i));
    FOCUS_CHECK(fresh, ValueError, "Vocab: duplicate symbol '{}' (symbol {}){}", tokens_[i],
                static_cast<int64_t>(i) - kNumSpecial,
                it->second < kNumSpecial ? ": a reserved special token" : "");
  }
}

int64_t Vocab::id(const std::string& symbol) const {
  const auto it = index_.find(symbol);
  return it == index_.end() ? kUnk : it->second;
}

const std::string& Vocab::token(int64_t id) const {
  FOCUS_CHECK(id >= 0 && id < size(), ValueError, "Vocab::token: id {} outside [0, {})", id, size());
  return tokens_[static_cast<size_t>(id)];
}

std::vector<std::string> Vocab::symbols() const {
  return {tokens_.begin() + kNumSpecial, tokens_.end()};
}

}  // namespace focus
