// Tokenizers: encode/decode round trips, unknown symbols, special-token spellings, JSON round
// trips and malformed JSON, and BPE merges learned on a hand-made corpus (worked out below).
#include "focus/text/tokenizer.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

using nlohmann::json;
using testing::throws_with;

std::vector<std::string> tokens_of(const Tokenizer& t, const std::vector<int64_t>& ids) {
  std::vector<std::string> out;
  for (const int64_t id : ids) out.push_back(t.vocab().token(id));
  return out;
}

void expect_json_round_trip(const Tokenizer& t, const std::vector<std::string>& texts) {
  const json j = t.to_json();
  const auto back = tokenizer_from_json(json::parse(j.dump()));
  EXPECT_EQ(back->to_json(), j);
  EXPECT_EQ(back->kind(), t.kind());
  EXPECT_EQ(back->vocab().tokens(), t.vocab().tokens());
  for (const auto& s : texts) EXPECT_EQ(back->encode(s), t.encode(s)) << s;
}

TEST(CharTokenizer, VocabOrderAndRoundTrip) {
  // counts: a 3, b 2, c 1, ' ' 1, é 1 -> a, b, then ' ' < 'c' < 'é' by bytes
  const auto t = train_tokenizer("char", {"abca", "b é"});
  EXPECT_EQ(t->kind(), "char");
  EXPECT_EQ(t->vocab().symbols(), (std::vector<std::string>{"a", "b", " ", "c", "é"}));
  const auto ids = t->encode("cab é");
  EXPECT_EQ(ids, (std::vector<int64_t>{7, 4, 5, 6, 8}));
  EXPECT_EQ(t->decode(ids), "cab é");
  expect_json_round_trip(*t, {"abc", "é a"});
}

TEST(CharTokenizer, UnknownsAndDecodeRules) {
  const auto t = train_tokenizer("char", {"ab"});
  EXPECT_EQ(t->encode("axbx"), (std::vector<int64_t>{4, Vocab::kUnk, 5, Vocab::kUnk}));
  EXPECT_EQ(t->unknown_symbols("axbyxü"), (std::vector<std::string>{"x", "y", "ü"}));
  EXPECT_TRUE(t->unknown_symbols("abba").empty());
  // <pad> and <s> skipped, </s> stops, <unk> printed
  EXPECT_EQ(t->decode({Vocab::kBos, 4, Vocab::kPad, Vocab::kUnk, 5, Vocab::kEos, 4}), "a<unk>b");
  EXPECT_TRUE(throws_with<ValueError>([&] { t->decode({4, 6}); }, "id 6 at position 1"));
  // invalid UTF-8 bytes are single unknown symbols
  EXPECT_EQ(t->encode("a\xff"), (std::vector<int64_t>{4, Vocab::kUnk}));
}

TEST(CharTokenizer, MinCount) {
  TokenizerOptions opt;
  opt.min_count = 2;
  const auto t = train_tokenizer("char", {"aab"}, opt);
  EXPECT_EQ(t->vocab().symbols(), (std::vector<std::string>{"a"}));
}

TEST(WordTokenizer, PhonesRoundTrip) {
  const auto t = train_tokenizer("word", {"HH AH0 L OW1", "W ER1 L D", " L  OW1\t"});
  EXPECT_EQ(t->kind(), "word");
  // L 3, OW1 2, then by bytes: AH0 D ER1 HH W
  EXPECT_EQ(t->vocab().symbols(),
            (std::vector<std::string>{"L", "OW1", "AH0", "D", "ER1", "HH", "W"}));
  const auto ids = t->encode("  HH AH0\tL OW1 ");
  EXPECT_EQ(tokens_of(*t, ids), (std::vector<std::string>{"HH", "AH0", "L", "OW1"}));
  EXPECT_EQ(t->decode(ids), "HH AH0 L OW1");
  EXPECT_EQ(t->unknown_symbols("HH ZH AA1 ZH"), (std::vector<std::string>{"ZH", "AA1"}));
  expect_json_round_trip(*t, {"W ER1 L D", "X"});
}

TEST(WordTokenizer, SpecialSpellingsAreUnknown) {
  // "<s>" in the data is neither learned as a symbol nor mapped onto the real <s>
  const auto t = train_tokenizer("word", {"a <s> b </s>"});
  EXPECT_EQ(t->vocab().symbols(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t->encode("a <s> <pad>"), (std::vector<int64_t>{4, Vocab::kUnk, Vocab::kUnk}));
  EXPECT_EQ(t->unknown_symbols("a <s>"), (std::vector<std::string>{"<s>"}));
}

TEST(TrainTokenizer, Errors) {
  EXPECT_TRUE(throws_with<ValueError>([] { train_tokenizer("sentencepiece", {"a"}); },
                                      "unknown kind 'sentencepiece' (choices: char, word, bpe)"));
  EXPECT_TRUE(throws_with<ValueError>([] { train_tokenizer("char", {"ok", "bad\xc3"}); },
                                      "text 1 is not valid UTF-8"));
  TokenizerOptions opt;
  opt.min_count = 0;
  EXPECT_TRUE(throws_with<ValueError>([&] { train_tokenizer("word", {"a"}, opt); }, "min_count 0"));
}

// Sennrich et al.'s example: low x5, lower x2, newest x6, widest x3, "_" the end-of-word marker.
// Initial pair counts: (e,s) (s,t) (t,_) 9; (w,e) 8; (l,o) (o,w) 7; (n,e) (e,w) 6; (w,_) 5; ...
//  1. e+s (9; ties with s+t and t+_, "e" smallest)      -> es
//  2. es+t (9; ties with t+_, "es" < "t")                -> est
//  3. est+_ (9)                                           -> "est_"
//  4. l+o (7; ties with o+w)  5. lo+w (7)                 -> low
//  6. e+w (6; ties with n+e and w+est_, "e" smallest)     -> ew   (newest = n ew est_)
//  7. ew+est_ (6; ties with n+ew, "ew" < "n")             -> ewest_
//  8. n+ewest_ (6)  9. low+_ (5)
std::vector<std::string> sennrich_corpus() {
  std::vector<std::string> texts;
  for (int i = 0; i < 5; ++i) texts.push_back("low");
  texts.push_back("lower lower");
  texts.push_back("newest newest newest widest widest widest newest newest newest");
  return texts;
}

TEST(BpeTokenizer, LearnsExpectedMerges) {
  TokenizerOptions opt;
  opt.bpe_merges = 9;
  const auto t = train_tokenizer("bpe", sennrich_corpus(), opt);
  EXPECT_EQ(t->kind(), "bpe");
  const json j = t->to_json();
  const json expected = json::parse(R"([["e","s"],["es","t"],["est"," "],["l","o"],["lo","w"],
      ["e","w"],["ew","est "],["n","ewest "],["low"," "]])");
  EXPECT_EQ(j.at("merges"), expected);
  // base symbols by count: e 17 (low 0, lower 2, newest 12, widest 3), " " 16, w 16, s/t 9 ...
  EXPECT_EQ(t->vocab().token(4), "e");
  EXPECT_EQ(t->vocab().symbols().back(), "low ");
  // lowest: l o w e s t _ -> ranks 1,2,3 give "est ", 4,5 give low; (low, est_) is no merge
  EXPECT_EQ(tokens_of(*t, t->encode("lowest")), (std::vector<std::string>{"low", "est "}));
  // newer: n e w e r _ -> e+w (rank 6) only
  EXPECT_EQ(tokens_of(*t, t->encode("newer")), (std::vector<std::string>{"n", "ew", "e", "r", " "}));
  EXPECT_EQ(tokens_of(*t, t->encode("newest low")), (std::vector<std::string>{"newest ", "low "}));
  EXPECT_EQ(t->decode(t->encode(" lowest\tnewer  low ")), "lowest newer low");
  expect_json_round_trip(*t, {"lowest newer", "widest"});
}

TEST(BpeTokenizer, StopsWhenPairsAreRare) {
  TokenizerOptions opt;  // 8000 merges asked; the corpus has far fewer pairs seen twice
  const auto t = train_tokenizer("bpe", sennrich_corpus(), opt);
  const auto merges = t->to_json().at("merges");
  EXPECT_LT(merges.size(), 30u);
  // every training word ends up one token
  for (const char* w : {"low", "lower", "newest", "widest"}) EXPECT_EQ(t->encode(w).size(), 1u) << w;
  opt.min_count = 7;  // only pairs seen >= 7 times: e+s, es+t, est+_, l+o, lo+w, then w+e? no (2)
  const auto t7 = train_tokenizer("bpe", sennrich_corpus(), opt);
  EXPECT_EQ(t7->to_json().at("merges").size(), 5u);
}

TEST(BpeTokenizer, UnicodeUnknownsAndRoundTrip) {
  TokenizerOptions opt;
  opt.bpe_merges = 50;
  const std::vector<std::string> texts = {"größer größte groß", "日本語 日本", "naïve naïveté",
                                          "<s> <s> </w> a</w>b"};
  const auto t = train_tokenizer("bpe", texts, opt);
  for (const auto& s : texts) EXPECT_EQ(t->decode(t->encode(s)), s) << s;
  EXPECT_EQ(t->decode(t->encode("日本 groß  naïve")), "日本 groß naïve");
  const auto ids = t->encode("großxß");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), Vocab::kUnk), 1);
  EXPECT_EQ(t->decode(ids), "groß<unk>ß");
  EXPECT_EQ(t->unknown_symbols("zqq ß日"), (std::vector<std::string>{"z", "q"}));
  for (const auto& tok : t->vocab().symbols()) {
    EXPECT_NE(tok, "<s>");  // no merge may spell a special token
    // the end-of-word marker only ever ends a token
    EXPECT_TRUE(tok.find(' ') == std::string::npos || tok.find(' ') == tok.size() - 1) << tok;
  }
  expect_json_round_trip(*t, texts);
}

TEST(BpeTokenizer, Deterministic) {
  TokenizerOptions opt;
  opt.bpe_merges = 40;
  auto texts = sennrich_corpus();
  texts.push_back("the quick brown fox jumps over the lazy dog");
  const auto a = train_tokenizer("bpe", texts, opt);
  std::reverse(texts.begin(), texts.end());  // same multiset of words
  const auto b = train_tokenizer("bpe", texts, opt);
  EXPECT_EQ(a->to_json(), b->to_json());
}

TEST(TokenizerJson, Malformed) {
  const auto fe = [](const json& j, const std::string& needle) {
    return throws_with<FormatError>([&] { tokenizer_from_json(j); }, needle);
  };
  EXPECT_TRUE(fe(json::array(), "expected an object"));
  EXPECT_TRUE(fe(json{{"symbols", json::array()}}, "missing field 'kind'"));
  EXPECT_TRUE(fe(json{{"kind", 3}}, "field 'kind' is a number"));
  EXPECT_TRUE(fe(json{{"kind", "spm"}, {"symbols", json::array()}}, "unknown kind 'spm'"));
  EXPECT_TRUE(fe(json{{"kind", "char"}}, "missing field 'symbols'"));
  EXPECT_TRUE(fe(json{{"kind", "word"}, {"symbols", "abc"}}, "field 'symbols' is a string"));
  EXPECT_TRUE(fe(json{{"kind", "word"}, {"symbols", {"a", 1}}}, "symbols[1] is a number"));
  EXPECT_TRUE(fe(json{{"kind", "word"}, {"symbols", {"a", "a"}}}, "duplicate symbol 'a'"));
  TokenizerOptions opt;
  opt.bpe_merges = 9;
  const json good = train_tokenizer("bpe", sennrich_corpus(), opt)->to_json();
  auto bad = good;
  bad.erase("merges");
  EXPECT_TRUE(fe(bad, "missing field 'merges'"));
  bad = good;
  bad.erase("end_of_word");
  EXPECT_TRUE(fe(bad, "missing field 'end_of_word'"));
  bad = good;
  bad["merges"][2] = {"est", "q"};
  EXPECT_TRUE(fe(bad, "merges[2]"));
  bad = good;
  bad["merges"][1] = {"es"};
  EXPECT_TRUE(fe(bad, "merges[1]"));
  bad = good;
  bad["merges"].push_back({"e", "s"});
  EXPECT_TRUE(fe(bad, "repeats an earlier merge"));
}

}  // namespace
}  // namespace focus
