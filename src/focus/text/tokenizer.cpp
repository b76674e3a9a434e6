// The char and word tokenizers, training and JSON dispatch (BPE lives in bpe.cpp).
// JSON: {"kind": "char"|"word", "symbols": [...]} where symbols are the vocabulary without the
// four specials, in id order.
#include "focus/text/tokenizer.hpp"

#include <fmt/ranges.h>

#include "focus/text/strings.hpp"
#include "focus/text/tokenizer_impl.hpp"

namespace focus {

Tokenizer::~Tokenizer() = default;

namespace text_detail {

std::vector<std::string> sorted_by_count(const std::unordered_map<std::string, int64_t>& counts,
                                         int64_t min_count) {
  std::vector<std::pair<int64_t, std::string>> items;
  const auto& specials = Vocab::special_tokens();
  for (const auto& [s, c] : counts)
    if (c >= min_count && std::find(specials.begin(), specials.end(), s) == specials.end())
      items.emplace_back(-c, s);
  std::sort(items.begin(), items.end());
  std::vector<std::string> out;
  out.reserve(items.size());
  for (auto& it : items) out.push_back(std::move(it.second));
  return out;
}

void check_utf8(const std::vector<std::string>& texts, const std::string& kind) {
  for (size_t i = 0; i < texts.size(); ++i)
    FOCUS_CHECK(is_valid_utf8(texts[i]), ValueError,
                "train_tokenizer('{}'): text {} is not valid UTF-8", kind, i);
}

const nlohmann::json& field(const nlohmann::json& j, const char* name) {
  FOCUS_CHECK(j.is_object(), FormatError, "tokenizer JSON: expected an object, got {}",
              j.type_name());
  const auto it = j.find(name);
  FOCUS_CHECK(it != j.end(), FormatError, "tokenizer JSON: missing field '{}'", name);
  return *it;
}

std::vector<std::string> string_array(const nlohmann::json& j, const char* name) {
  const auto& a = field(j, name);
  FOCUS_CHECK(a.is_array(), FormatError, "tokenizer JSON: field '{}' is a {}, expected an array",
              name, a.type_name());
  std::vector<std::string> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    FOCUS_CHECK(a[i].is_string(), FormatError, "tokenizer JSON: {}[{}] is a {}, expected a string",
                name, i, a[i].type_name());
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

Vocab vocab_from_json(const nlohmann::json& j) {
  try {
    return Vocab(string_array(j, "symbols"));
  } catch (const ValueError& e) {
    throw FormatError(fmt::format("tokenizer JSON: field 'symbols': {}", e.what()));
  }
}

}  // namespace text_detail

namespace {

using text_detail::for_each_output_token;
using text_detail::symbol_id;

// Shared by char and word: split(text) gives the symbols, decode joins tokens with `sep`.
template <class Split>
class SymbolTokenizer : public Tokenizer {
 public:
  SymbolTokenizer(Vocab v, std::string kind, std::string sep)
      : Tokenizer(std::move(v)), kind_(std::move(kind)), sep_(std::move(sep)) {}
  std::string kind() const override { return kind_; }

  std::vector<int64_t> encode(const std::string& text) const override {
    const auto syms = Split{}(text);
    std::vector<int64_t> ids(syms.size());
    for (size_t i = 0; i < syms.size(); ++i) ids[i] = symbol_id(vocab_, syms[i]);
    return ids;
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string out;
    bool first = true;
    for_each_output_token(vocab_, ids, [&](const std::string& t) {
      if (!first) out += sep_;
      out += t;
      first = false;
    });
    return out;
  }

  std::vector<std::string> unknown_symbols(const std::string& text) const override {
    std::vector<std::string> out;
    for (auto& s : Split{}(text))
      if (symbol_id(vocab_, s) == Vocab::kUnk && std::find(out.begin(), out.end(), s) == out.end())
        out.push_back(std::move(s));
    return out;
  }

  nlohmann::json to_json() const override {
    return {{"kind", kind_}, {"symbols", vocab_.symbols()}};
  }

 private:
  std::string kind_, sep_;
};

struct SplitChars {
  std::vector<std::string> operator()(const std::string& s) const { return split_utf8(s); }
};
struct SplitWords {
  std::vector<std::string> operator()(const std::string& s) const { return split_whitespace(s); }
};

std::unique_ptr<Tokenizer> make_symbol_tokenizer(const std::string& kind, Vocab v) {
  if (kind == "char") return std::make_unique<SymbolTokenizer<SplitChars>>(std::move(v), kind, "");
  return std::make_unique<SymbolTokenizer<SplitWords>>(std::move(v), kind, " ");
}

const std::vector<std::string> kKinds = {"char", "word", "bpe"};

}  // namespace

std::unique_ptr<Tokenizer> train_tokenizer(const std::string& kind,
                                           const std::vector<std::string>& texts,
                                           const TokenizerOptions& opt) {
  FOCUS_CHECK(std::find(kKinds.begin(), kKinds.end(), kind) != kKinds.end(), ValueError,
              "train_tokenizer: unknown kind '{}' (choices: {})", kind, fmt::join(kKinds, ", "));
  FOCUS_CHECK(opt.min_count >= 1, ValueError, "train_tokenizer: min_count {} < 1", opt.min_count);
  FOCUS_CHECK(opt.bpe_merges >= 0, ValueError, "train_tokenizer: bpe_merges {} < 0",
              opt.bpe_merges);
  text_detail::check_utf8(texts, kind);
  if (kind == "bpe") return text_detail::train_bpe(texts, opt);
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (auto& s : kind == "char" ? split_utf8(t) : split_whitespace(t)) ++counts[std::move(s)];
  return make_symbol_tokenizer(kind, Vocab(text_detail::sorted_by_count(counts, opt.min_count)));
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& j) {
  const auto& k = text_detail::field(j, "kind");
  FOCUS_CHECK(k.is_string(), FormatError, "tokenizer JSON: field 'kind' is a {}, expected a string",
              k.type_name());
  const std::string kind = k.get<std::string>();
  FOCUS_CHECK(std::find(kKinds.begin(), kKinds.end(), kind) != kKinds.end(), FormatError,
              "tokenizer JSON: unknown kind '{}' (choices: {})", kind, fmt::join(kKinds, ", "));
  if (kind == "bpe") return text_detail::bpe_from_json(j);
  return make_symbol_tokenizer(kind, text_detail::vocab_from_json(j));
}

}  // namespace focus
