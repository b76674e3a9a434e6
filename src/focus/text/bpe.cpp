// Byte-pair encoding (Sennrich et al. 2016), trained and applied on code points.
// A word (a run of non-whitespace) is its code points followed by the end-of-word marker " ": the
// only whitespace a token can hold, so no user text can forge it. Training counts word
// frequencies, then repeatedly merges the most frequent adjacent pair (ties: the smaller
// (left, right) strings), updating pair counts incrementally (a lazy max-heap over counts and,
// per pair, the words holding it): 8,000 merges over CMUdict's 124k words take ~3.5 s, encoding
// them all ~0.2 s (one core).
// encode merges, per word, the present pair of lowest rank (all its occurrences, left to right)
// until none is left: the merges in learned order.
// JSON: {"kind": "bpe", "end_of_word": " ", "symbols": [...], "merges": [[left, right], ...]}.
#include <array>
#include <queue>
#include <unordered_set>

#include "focus/text/strings.hpp"
#include "focus/text/tokenizer_impl.hpp"

namespace focus::text_detail {
namespace {

const std::string kEndOfWord = " ";

uint64_t pair_key(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
}

struct Merge {
  int64_t rank, result;
};

// Merge rules by pair key: open addressing with linear probing in a power-of-two table at most
// half full (encode's hot lookup; several times faster than std::unordered_map here).
class MergeTable {
 public:
  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    slots_.assign(cap, {kEmpty, {}});
  }
  // Keeps the first rule of a key (a pair's rank is its first merge).
  void insert(uint64_t key, Merge m) {
    for (size_t i = slot(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].first == key) return;
      if (slots_[i].first == kEmpty) {
        slots_[i] = {key, m};
        return;
      }
    }
  }
  const Merge* find(uint64_t key) const {
    for (size_t i = slot(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].first == key) return &slots_[i].second;
      if (slots_[i].first == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are < 2^32, so no pair has this key
  size_t slot(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & (slots_.size() - 1);
  }
  std::vector<std::pair<uint64_t, Merge>> slots_;
};

class BpeTokenizer : public Tokenizer {
 public:
  BpeTokenizer(Vocab v, std::vector<std::pair<int64_t, int64_t>> merges)
      : Tokenizer(std::move(v)),
        merges_(std::move(merges)),
        ranks_(merges_.size()),
        eow_(vocab_.id(kEndOfWord)) {
    for (int c = 0; c < 128; ++c) ascii_[c] = symbol_id(vocab_, std::string(1, static_cast<char>(c)));
    for (size_t r = 0; r < merges_.size(); ++r) {
      const auto [a, b] = merges_[r];
      ranks_.insert(pair_key(a, b),
                    Merge{static_cast<int64_t>(r), vocab_.id(vocab_.token(a) + vocab_.token(b))});
    }
  }
  std::string kind() const override { return "bpe"; }

  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int64_t> ids, word;
    for (const auto& w : split_whitespace(text)) {
      encode_word(w, word);
      ids.insert(ids.end(), word.begin(), word.end());
    }
    return ids;
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string out;
    for_each_output_token(vocab_, ids, [&](const std::string& t) { out += t; });
    return normalize_whitespace(out);
  }

  std::vector<std::string> unknown_symbols(const std::string& text) const override {
    std::vector<std::string> out;
    for (const auto& w : split_whitespace(text))
      for (auto& c : split_utf8(w))
        if (symbol_id(vocab_, c) == Vocab::kUnk && std::find(out.begin(), out.end(), c) == out.end())
          out.push_back(std::move(c));
    return out;
  }

  nlohmann::json to_json() const override {
    nlohmann::json merges = nlohmann::json::array();
    for (const auto& [a, b] : merges_) merges.push_back({vocab_.token(a), vocab_.token(b)});
    return {{"kind", "bpe"}, {"end_of_word", kEndOfWord}, {"symbols", vocab_.symbols()},
            {"merges", std::move(merges)}};
  }

 private:
  // The ids of one word (no whitespace inside) into `syms`.
  void encode_word(const std::string& w, std::vector<int64_t>& syms) const {
    syms.clear();
    for (size_t i = 0; i < w.size();) {
      const auto c = static_cast<unsigned char>(w[i]);
      if (c < 128) {
        syms.push_back(ascii_[c]);
        ++i;
        continue;
      }
      const size_t n = std::max<size_t>(1, utf8_sequence_length(w, i));
      syms.push_back(symbol_id(vocab_, w.substr(i, n)));
      i += n;
    }
    syms.push_back(eow_);
    while (syms.size() > 1) {
      const Merge* best = nullptr;
      uint64_t best_key = 0;
      for (size_t i = 0; i + 1 < syms.size(); ++i) {
        const uint64_t key = pair_key(syms[i], syms[i + 1]);
        const Merge* m = ranks_.find(key);
        if (m && (!best || m->rank < best->rank)) {
          best = m;
          best_key = key;
        }
      }
      if (!best) break;
      size_t o = 0;
      for (size_t i = 0; i < syms.size(); ++o) {
        if (i + 1 < syms.size() && pair_key(syms[i], syms[i + 1]) == best_key) {
          syms[o] = best->result;
          i += 2;
        } else {
          syms[o] = syms[i++];
        }
      }
      syms.resize(o);
    }
  }

  std::vector<std::pair<int64_t, int64_t>> merges_;  // (left id, right id) in rank order
  MergeTable ranks_;
  int64_t eow_;
  std::array<int64_t, 128> ascii_;  // ids of the one-byte symbols
};

// Training state: distinct words as symbol-id sequences with their frequencies.
class BpeTrainer {
 public:
  BpeTrainer(const std::vector<std::string>& texts, int64_t min_count) {
    std::unordered_map<std::string, int64_t> word_counts, char_counts;
    for (const auto& t : texts)
      for (auto& w : split_whitespace(t)) ++word_counts[std::move(w)];
    std::vector<std::pair<std::string, int64_t>> words(word_counts.begin(), word_counts.end());
    std::sort(words.begin(), words.end());  // a deterministic word order
    for (const auto& [w, c] : words) {
      for (auto& ch : split_utf8(w)) char_counts[std::move(ch)] += c;
      char_counts[kEndOfWord] += c;
    }
    strs_ = Vocab::special_tokens();
    for (auto& s : sorted_by_count(char_counts, min_count)) add_symbol(std::move(s));
    for (const auto& [w, c] : words) {
      std::vector<int64_t> syms;
      for (const auto& ch : split_utf8(w)) syms.push_back(lookup(ch));
      syms.push_back(lookup(kEndOfWord));
      words_.push_back(std::move(syms));
      freq_.push_back(c);
    }
  }

  void learn(int64_t n_merges, int64_t min_pair_count) {
    const auto lower = [this](const Entry& x, const Entry& y) {  // heap order: x below y
      if (x.count != y.count) return x.count < y.count;
      const std::string &xa = strs_[x.a], &ya = strs_[y.a];
      return xa != ya ? xa > ya : strs_[x.b] > strs_[y.b];
    };
    std::priority_queue<Entry, std::vector<Entry>, decltype(lower)> heap(lower);
    for (size_t w = 0; w < words_.size(); ++w) count_pairs(w, +1, true);
    for (const auto& [key, c] : delta_) {
      counts_[key] = c;
      heap.push({c, static_cast<int64_t>(key >> 32), static_cast<int64_t>(key & 0xFFFFFFFFu)});
    }
    delta_.clear();
    std::vector<int64_t> stamp(words_.size(), -1);
    std::unordered_set<uint64_t> merged;
    for (int64_t step = 0; static_cast<int64_t>(merges_.size()) < n_merges && !heap.empty();
         ++step) {
      const Entry top = heap.top();
      heap.pop();
      const uint64_t key = pair_key(top.a, top.b);
      const auto cit = counts_.find(key);
      if (cit == counts_.end() || cit->second != top.count) continue;  // stale entry
      if (top.count < min_pair_count) break;
      std::string joined = strs_[top.a] + strs_[top.b];
      const auto& specials = Vocab::special_tokens();
      if (std::find(specials.begin(), specials.end(), joined) != specials.end()) {
        counts_.erase(cit);  // never form a token spelled like a special one
        continue;
      }
      const int64_t result = lookup_or_add(std::move(joined));
      // A pair merged before can reappear when a later merge rebuilds one of its sides; it is
      // merged again but keeps its first rank (as encode would do).
      if (merged.insert(key).second) merges_.emplace_back(top.a, top.b);
      std::vector<int64_t> holders;
      holders.swap(where_[key]);
      for (const int64_t w : holders) {
        if (stamp[w] == step) continue;
        stamp[w] = step;
        apply(w, top.a, top.b, result);
      }
      for (const auto& [k, d] : delta_) {
        if (d == 0) continue;
        const int64_t c = counts_[k] += d;
        if (c > 0)
          heap.push({c, static_cast<int64_t>(k >> 32), static_cast<int64_t>(k & 0xFFFFFFFFu)});
        else
          counts_.erase(k);
      }
      delta_.clear();
    }
  }

  std::unique_ptr<Tokenizer> finish() {
    std::vector<std::string> symbols(strs_.begin() + Vocab::kNumSpecial, strs_.end());
    return std::make_unique<BpeTokenizer>(Vocab(std::move(symbols)), std::move(merges_));
  }

 private:
  struct Entry {
    int64_t count, a, b;
  };

  void add_symbol(std::string s) {
    ids_.emplace(s, static_cast<int64_t>(strs_.size()));
    strs_.push_back(std::move(s));
  }
  int64_t lookup(const std::string& s) const {
    const auto it = ids_.find(s);
    return it == ids_.end() ? Vocab::kUnk : it->second;
  }
  int64_t lookup_or_add(std::string s) {
    const int64_t id = lookup(s);
    if (id != Vocab::kUnk) return id;
    add_symbol(std::move(s));
    return static_cast<int64_t>(strs_.size()) - 1;
  }

  // Adds sign * freq for each adjacent pair of word w (pairs with <unk> never merge) into
  // delta_; with index, records w as a holder of each pair.
  void count_pairs(size_t w, int sign, bool index) {
    const auto& s = words_[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      if (s[i] == Vocab::kUnk || s[i + 1] == Vocab::kUnk) continue;
      const uint64_t key = pair_key(s[i], s[i + 1]);
      delta_[key] += sign * freq_[w];
      if (index) {
        auto& h = where_[key];
        if (h.empty() || h.back() != static_cast<int64_t>(w)) h.push_back(static_cast<int64_t>(w));
      }
    }
  }

  // Merges every (a, b) of word w, left to right, into `result`.
  void apply(int64_t w, int64_t a, int64_t b, int64_t result) {
    auto& s = words_[w];
    bool found = false;
    for (size_t i = 0; i + 1 < s.size() && !found; ++i) found = s[i] == a && s[i + 1] == b;
    if (!found) return;  // a stale holder
    count_pairs(w, -1, false);
    size_t o = 0;
    for (size_t i = 0; i < s.size(); ++o) {
      if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
        s[o] = result;
        i += 2;
      } else {
        s[o] = s[i++];
      }
    }
    s.resize(o);
    count_pairs(w, +1, true);
  }

  std::vector<std::string> strs_;  // symbol strings by id (specials first)
  std::unordered_map<std::string, int64_t> ids_;
  std::vector<std::vector<int64_t>> words_;
  std::vector<int64_t> freq_;
  std::unordered_map<uint64_t, int64_t> counts_, delta_;
  std::unordered_map<uint64_t, std::vector<int64_t>> where_;
  std::vector<std::pair<int64_t, int64_t>> merges_;
};

}  // namespace

std::unique_ptr<Tokenizer> train_bpe(const std::vector<std::string>& texts,
                                     const TokenizerOptions& opt) {
  BpeTrainer trainer(texts, opt.min_count);
  trainer.learn(opt.bpe_merges, std::max<int64_t>(2, opt.min_count));
  return trainer.finish();
}

std::unique_ptr<Tokenizer> bpe_from_json(const nlohmann::json& j) {
  const auto& eow = field(j, "end_of_word");
  FOCUS_CHECK(eow.is_string() && eow.get<std::string>() == kEndOfWord, FormatError,
              "tokenizer JSON: field 'end_of_word' is {}, expected \" \"",
              eow.is_structured() ? eow.type_name() : eow.dump());
  Vocab vocab = vocab_from_json(j);
  FOCUS_CHECK(vocab.contains(kEndOfWord), FormatError,
              "tokenizer JSON: 'symbols' lacks the end-of-word marker \" \"");
  const auto& m = field(j, "merges");
  FOCUS_CHECK(m.is_array(), FormatError, "tokenizer JSON: field 'merges' is a {}, expected an array",
              m.type_name());
  std::vector<std::pair<int64_t, int64_t>> merges;
  merges.reserve(m.size());
  std::unordered_set<uint64_t> seen;
  for (size_t r = 0; r < m.size(); ++r) {
    const auto& p = m[r];
    // Not p.dump(): a corrupt file's value may nest thousands deep, and dump() recurses.
    FOCUS_CHECK(p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_string(),
                FormatError, "tokenizer JSON: merges[{}] is a {} of {}, expected [left, right] "
                "strings", r, p.type_name(), p.size());
    const std::string a = p[0].get<std::string>(), b = p[1].get<std::string>();
    FOCUS_CHECK(vocab.id(a) >= Vocab::kNumSpecial && vocab.id(b) >= Vocab::kNumSpecial &&
                    vocab.id(a + b) >= Vocab::kNumSpecial,
                FormatError, "tokenizer JSON: merges[{}] = {}: '{}', '{}' or their join is not a symbol",
                r, p.dump(), a, b);
    FOCUS_CHECK(seen.insert(pair_key(vocab.id(a), vocab.id(b))).second, FormatError,
                "tokenizer JSON: merges[{}] = {} repeats an earlier merge", r, p.dump());
    merges.emplace_back(vocab.id(a), vocab.id(b));
  }
  return std::make_unique<BpeTokenizer>(std::move(vocab), std::move(merges));
}

}  // namespace focus::text_detail
