// Metrics on hand-computed cases: edit distance, G2P WER/PER (closest reference, ties to the
// shorter), corpus BLEU-4 (clipping, multiple references, brevity, smoothing, corpus sums) and
// chrF (code points, whitespace removed, best reference, corpus averaging).
#include "focus/text/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

using testing::throws_with;
using V = std::vector<std::string>;

V chars(const std::string& s) {
  V out;
  for (const char c : s) out.push_back(std::string(1, c));
  return out;
}

TEST(EditDistance, HandCases) {
  EXPECT_EQ(edit_distance(chars("kitten"), chars("sitting")), 3);  // k->s, e->i, +g
  EXPECT_EQ(edit_distance(chars(""), chars("abc")), 3);
  EXPECT_EQ(edit_distance(chars("abc"), chars("")), 3);
  EXPECT_EQ(edit_distance(chars("abc"), chars("abc")), 0);
  EXPECT_EQ(edit_distance({"AH", "B"}, {"B", "AH"}), 2);
  EXPECT_EQ(edit_distance(chars("flaw"), chars("lawn")), 2);  // -f, +n
}

TEST(ClosestReference, TiesGoToTheShorter) {
  int64_t d = -1;
  // "A B" vs "A B C D": 2 insertions; vs "X Y": 2 substitutions -> tie, "X Y" is shorter
  EXPECT_EQ(closest_reference({"A", "B"}, {{"A", "B", "C", "D"}, {"X", "Y"}}, &d), 1);
  EXPECT_EQ(d, 2);
  // equal distance and length: the earlier
  EXPECT_EQ(closest_reference({"A"}, {{"B"}, {"C"}}, &d), 0);
  EXPECT_EQ(d, 1);
  EXPECT_TRUE(throws_with<ValueError>([] { closest_reference({"A"}, {}); }, "no references"));
}

TEST(G2PScore, HandCase) {
  const V hyps = {"K AE T", "D AO G", " R  EH D ", "A B", ""};
  const std::vector<V> refs = {{"K AE T"}, {"D AA G"}, {"R IY D", "R EH D"}, {"A B C D", "X Y"},
                               {"AH"}};
  const auto s = score_g2p(hyps, refs);
  // word errors: D AO G, A B, "" -> 3 of 5; edits 0 + 1 + 0 + 2 + 1 = 4 over the closest
  // references' lengths 3 + 3 + 3 + 2 + 1 = 12
  EXPECT_EQ(s.words, 5);
  EXPECT_EQ(s.word_errors, 3);
  EXPECT_EQ(s.edits, 4);
  EXPECT_EQ(s.ref_tokens, 12);
  EXPECT_DOUBLE_EQ(s.wer(), 0.6);
  EXPECT_DOUBLE_EQ(s.per(), 4.0 / 12.0);
  EXPECT_EQ(G2PScore{}.wer(), 0.0);
  EXPECT_TRUE(throws_with<ValueError>([] { score_g2p({"A"}, {}); }, "1 hypotheses vs 0"));
  EXPECT_TRUE(throws_with<ValueError>([] { score_g2p({"A"}, {{}}); }, "word 0 ('A') has no reference"));
}

TEST(Bleu, PerfectAndEmpty) {
  EXPECT_NEAR(corpus_bleu({"the cat sat on the mat"}, {{"the cat sat on the mat"}}), 100.0, 1e-9);
  EXPECT_EQ(corpus_bleu({""}, {{"a b c d"}}), 0.0);
  // fewer than 4 tokens in the whole corpus: no 4-grams, 0 as in sacrebleu
  EXPECT_EQ(corpus_bleu({"a b c"}, {{"a b c"}}), 0.0);
  EXPECT_TRUE(throws_with<ValueError>([] { corpus_bleu({"a"}, {{}}); }, "sentence 0 has no reference"));
}

TEST(Bleu, MultipleReferencesUnion) {
  // hyp "a b c d e"; refs "a b c d x y" and "b c d e": every n-gram is in one of them
  // (a-b-c-d in the first, c-d-e / b-c-d-e in the second); lengths 6 and 4 tie at distance 1,
  // the shorter (4) is taken, 5 >= 4 so no brevity penalty: 100.
  EXPECT_NEAR(corpus_bleu({"a b c d e"}, {{"a b c d x y", "b c d e"}}), 100.0, 1e-9);
  // clipping: "the the the the" vs refs with at most 2 "the": p1 = 2/4, p2..p4 = 0 -> smoothed
  // 1/(2*3), 1/(4*2), 1/(8*1); r = 4 = c.
  const double want = 100 * std::pow(0.5 / 6 / 8 / 8, 0.25);
  EXPECT_NEAR(corpus_bleu({"the the the the"}, {{"the cat the dog", "a the"}}), want, 1e-9);
}

TEST(Bleu, BrevityAndCorpusSums) {
  // hyp "a b c d e f" vs "a b c d x f g h": matches 5/6, 3/5 (ab bc cd), 2/4 (abc bcd),
  // 1/3 (abcd); c = 6 < r = 8: BP = exp(1 - 8/6)
  const double b1 = 100 * std::exp(1 - 8.0 / 6) * std::pow(5.0 / 6 * 3.0 / 5 * 2.0 / 4 / 3, 0.25);
  EXPECT_NEAR(corpus_bleu({"a b c d e f"}, {{"a b c d x f g h"}}), b1, 1e-9);
  // hyp "a b c d" vs "a b x d": 3/4, 1/3, 0/2 -> 1/(2*2), 0/1 -> 1/(4*1): (3/4/3/4/4)^(1/4)
  EXPECT_NEAR(corpus_bleu({"a b c d"}, {{"a b x d"}}), 100 * std::pow(1.0 / 64, 0.25), 1e-9);
  // both as one corpus: counts summed first: 8/10, 4/8, 2/6, 1/4; c = 10, r = 12
  const double b2 = 100 * std::exp(1 - 12.0 / 10) * std::pow(0.8 * 0.5 / 3 / 4, 0.25);
  EXPECT_NEAR(corpus_bleu({"a b c d e f", "a b c d"}, {{"a b c d x f g h"}, {"a b x d"}}), b2, 1e-9);
}

TEST(Chrf, HandCases) {
  EXPECT_NEAR(corpus_chrf({"abc def"}, {{"abcdef"}}), 100.0, 1e-9);  // whitespace removed
  EXPECT_EQ(corpus_chrf({""}, {{"abc"}}), 0.0);
  // "abc" vs "abd": orders 1..3 have P = R = 2/3, 1/2, 0 (orders 4..6 have no n-grams);
  // averages 7/18 each, F_2 = 7/18
  EXPECT_NEAR(corpus_chrf({"abc"}, {{"abd"}}), 100 * 7.0 / 18, 1e-9);
  EXPECT_NEAR(corpus_chrf({"a bc"}, {{"xyz", "abd"}}), 100 * 7.0 / 18, 1e-9);  // best reference
  EXPECT_NEAR(corpus_chrf({"abc"}, {{"abd", "abc"}}), 100.0, 1e-9);
  // "ab" vs "abc": order 1 P = 1, R = 2/3; order 2 P = 1, R = 1/2; P = 1, R = 7/12,
  // F_2 = 5 P R / (4 P + R) = 7/11
  EXPECT_NEAR(corpus_chrf({"ab"}, {{"abc"}}), 100 * 7.0 / 11, 1e-9);
  // corpus {abc vs abd, ab vs abc}: summed stats per order (hyp, ref, match): (5, 6, 4),
  // (3, 4, 2), (1, 2, 0): P = (4/5 + 2/3 + 0)/3, R = (4/6 + 2/4 + 0)/3
  const double p = (0.8 + 2.0 / 3) / 3, r = (4.0 / 6 + 0.5) / 3;
  EXPECT_NEAR(corpus_chrf({"abc", "ab"}, {{"abd"}, {"abc"}}), 100 * 5 * p * r / (4 * p + r), 1e-9);
  // code points, not bytes: "héllo" vs "hello": per order matches 4/5, 2/4, 1/3, 0/2, 0/1
  const double q = (0.8 + 0.5 + 1.0 / 3) / 5;
  EXPECT_NEAR(corpus_chrf({"héllo"}, {{"hello"}}), 100 * q, 1e-9);
}

}  // namespace
}  // namespace focus
