// Greedy and beam search over a Seq2Seq (random weights: the search logic is what is tested, the
// model only has to be deterministic): beam 1 equals greedy; n-best lists are sorted by score;
// every score equals the teacher-forced log-probability of its output under the model; a batch
// decodes like its sentences one by one; max_len cuts; bad options are ValueErrors.
#include <gtest/gtest.h>

#include <cmath>

#include "../support/expect_error.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/models/seq2seq_search.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

std::unique_ptr<Seq2Seq> model(uint64_t seed = 5) {
  Seq2SeqConfig c;
  c.src_vocab = 9;
  c.tgt_vocab = 7;  // small: </s> is likely, so hypotheses end at different lengths
  c.d_model = 16;
  c.n_enc_layers = 1;
  c.n_dec_layers = 2;
  c.n_heads = 2;
  c.d_ff = 24;
  c.max_len = 12;
  c.dropout = 0.1;
  Rng rng(seed);
  auto m = std::make_unique<Seq2Seq>(c, rng);
  m->eval();
  return m;
}

// Three padded sources (B = 3, S = 5).
void sources(Tensor& src, Tensor& len) {
  src = Tensor::from_vector(std::vector<int64_t>{4, 5, 6, 7, 8, 5, 4, 0, 0, 0, 8, 8, 6, 0, 0}, {3, 5});
  len = Tensor::from_vector(std::vector<int64_t>{5, 2, 3}, {3});
}

}  // namespace

TEST(Seq2SeqSearch, BeamOneEqualsGreedy) {
  for (uint64_t seed : {1, 2, 3, 4}) {
    auto m = model(seed);
    Tensor src, len;
    sources(src, len);
    SearchOptions o;
    const auto g = greedy_search(*m, src, len, o);
    const auto b = beam_search(*m, src, len, o);
    ASSERT_EQ(g.size(), 3u);
    for (size_t i = 0; i < g.size(); ++i) {
      ASSERT_EQ(g[i].size(), 1u);
      ASSERT_EQ(b[i].size(), 1u);
      EXPECT_EQ(g[i][0].tokens, b[i][0].tokens) << "seed " << seed << " sentence " << i;
      EXPECT_NEAR(g[i][0].log_prob, b[i][0].log_prob, 1e-9);
      EXPECT_EQ(g[i][0].finished, b[i][0].finished);
    }
  }
}

TEST(Seq2SeqSearch, NbestSortedAndScoresAreModelLogProbs) {
  auto m = model();
  Tensor src, len;
  sources(src, len);
  SearchOptions o;
  o.beam = 4;
  o.nbest = 4;
  o.length_penalty = 0.6;
  const auto hyps = beam_search(*m, src, len, o);
  for (size_t i = 0; i < hyps.size(); ++i) {
    ASSERT_GE(hyps[i].size(), 2u);
    for (size_t k = 1; k < hyps[i].size(); ++k) EXPECT_GE(hyps[i][k - 1].score, hyps[i][k].score);
    for (const Hypothesis& h : hyps[i]) {
      if (!h.finished) continue;  // cut at max_len: no </s> term
      const Tensor s = src.slice(0, int64_t(i), int64_t(i) + 1).contiguous();
      const Tensor l = len.slice(0, int64_t(i), int64_t(i) + 1).contiguous();
      const double lp = sequence_log_prob(*m, s, l, {h.tokens})[0];
      EXPECT_NEAR(h.log_prob, lp, 1e-4) << "sentence " << i;
      EXPECT_NEAR(h.score, lp / std::pow(double(h.tokens.size() + 1), 0.6), 1e-4);
    }
  }
}

TEST(Seq2SeqSearch, BatchEqualsOneByOne) {
  auto m = model(4);
  Tensor src, len;
  sources(src, len);
  SearchOptions o;
  o.beam = 3;
  o.nbest = 2;
  const auto all = beam_search(*m, src, len, o);
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t L = len.to_vector<int64_t>()[size_t(i)];
    const Tensor s = src.slice(0, i, i + 1).slice(1, 0, L).contiguous();
    const auto one = beam_search(*m, s, Tensor::from_vector(std::vector<int64_t>{L}, {1}), o);
    ASSERT_EQ(one[0].size(), all[size_t(i)].size());
    for (size_t k = 0; k < one[0].size(); ++k) {
      EXPECT_EQ(one[0][k].tokens, all[size_t(i)][k].tokens);
      EXPECT_NEAR(one[0][k].score, all[size_t(i)][k].score, 1e-4);
    }
  }
}

TEST(Seq2SeqSearch, MaxLenCutsUnfinished) {
  auto m = model();
  Tensor src, len;
  sources(src, len);
  SearchOptions o;
  o.max_len = 1;  // room for one token: either </s> or a cut hypothesis
  for (const auto& h : greedy_search(*m, src, len, o)) {
    ASSERT_EQ(h.size(), 1u);
    EXPECT_LE(h[0].tokens.size(), 1u);
    EXPECT_EQ(h[0].finished, h[0].tokens.empty());
  }
}

TEST(Seq2SeqSearch, BadOptions) {
  auto m = model();
  Tensor src, len;
  sources(src, len);
  SearchOptions o;
  o.beam = 2;
  o.nbest = 3;
  focus::testing::expect_error<ValueError>([&] { beam_search(*m, src, len, o); }, {"nbest 3"});
  o.nbest = 1;
  o.max_len = 99;
  focus::testing::expect_error<ValueError>([&] { beam_search(*m, src, len, o); }, {"max_len 99"});
  o.max_len = 0;
  m->train();
  focus::testing::expect_error<StateError>([&] { greedy_search(*m, src, len, o); }, {"eval()"});
}
