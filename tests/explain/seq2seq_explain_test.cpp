// Translation alignments: shapes and tokens, rows that are probability distributions, a causal
// decoder self-attention, maps from the fused kernel equal to the reference kernel's, the
// hypothesis equal to greedy search's, token faithfulness curves that start and end at the
// hypothesis' own probability, and clear errors for bad sources.
//   Letters: H heads, S source tokens, T target tokens (hypothesis + </s>).
#include <gtest/gtest.h>

#include <cmath>

#include "focus/explain/seq2seq_explain.hpp"
#include "focus/infer/translator.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/ops/attention.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/tokenizer.hpp"
#include "support/gradcheck.hpp"

namespace focus {
namespace {

using testing::max_abs_diff;

// A Translator over an untrained model (the maps need no training) and its parts.
struct Fixture {
  std::unique_ptr<Translator> tr;
  Seq2Seq* model = nullptr;
  const Tokenizer* src = nullptr;
  const Tokenizer* tgt = nullptr;
};

Fixture make_fixture() {
  Seq2SeqModelFile file;
  file.task = "translate";
  file.src_tok = train_tokenizer("char", {"abc", "cab", "bca"});
  file.tgt_tok = train_tokenizer("word", {"A B C", "C A B"});
  Seq2SeqConfig c;
  c.src_vocab = file.src_tok->vocab().size();
  c.tgt_vocab = file.tgt_tok->vocab().size();
  c.d_model = 16;
  c.n_enc_layers = 2;
  c.n_dec_layers = 2;
  c.n_heads = 2;
  c.d_ff = 32;
  c.max_len = 8;
  Rng rng(11);
  file.model = std::make_unique<Seq2Seq>(c, rng);
  Fixture f;
  f.tr = std::make_unique<Translator>(std::move(file));
  f.model = &f.tr->model();
  f.src = &f.tr->source_tokenizer();
  f.tgt = &f.tr->target_tokenizer();
  return f;
}

TEST(ExplainTranslation, MapsAreExactDistributions) {
  Fixture f = make_fixture();
  const AlignmentExplanation e = explain_translation(*f.tr, "abca");
  EXPECT_EQ(e.source_tokens, (std::vector<std::string>{"a", "b", "c", "a"}));
  const int64_t S = 4, T = static_cast<int64_t>(e.target_tokens.size());
  ASSERT_GE(T, 1);
  ASSERT_EQ(e.cross.size(), 2u);
  ASSERT_EQ(e.encoder_self.size(), 2u);
  for (const Tensor& m : e.cross) EXPECT_EQ(m.shape(), Shape({2, T, S}));
  for (const Tensor& m : e.encoder_self) EXPECT_EQ(m.shape(), Shape({2, S, S}));
  for (const Tensor& m : e.decoder_self) {
    ASSERT_EQ(m.shape(), Shape({2, T, T}));
    const std::vector<float> v = m.to_vector<float>();
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = i + 1; j < T; ++j) EXPECT_EQ(v[(h * T + i) * T + j], 0.f);  // causal
  }
  for (const auto* maps : {&e.cross, &e.encoder_self, &e.decoder_self})
    for (const Tensor& m : *maps) {
      const int64_t rows = m.size(0) * m.size(1), cols = m.size(2);
      const std::vector<float> v = m.to_vector<float>();
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t j = 0; j < cols; ++j) s += v[r * cols + j];
        EXPECT_NEAR(s, 1.0, 1e-5);
      }
    }
  // The hypothesis is greedy search's, and its log-probability is the model's.
  const Tensor src = Tensor::from_vector(f.src->encode("abca"), {1, S});
  const Tensor len = Tensor::from_vector(std::vector<int64_t>{S}, {1});
  const Hypothesis g = greedy_search(*f.model, src, len)[0][0];
  EXPECT_EQ(e.output, f.tgt->decode(g.tokens));
  EXPECT_DOUBLE_EQ(e.log_prob, g.log_prob);

  set_attention_kernel(AttentionKernel::Reference);
  const AlignmentExplanation r = explain_translation(*f.tr, "abca");
  set_attention_kernel(AttentionKernel::Auto);
  ASSERT_EQ(r.target_tokens, e.target_tokens);
  for (size_t l = 0; l < e.cross.size(); ++l) {
    EXPECT_LT(max_abs_diff(e.cross[l], r.cross[l]), 1e-5);
    EXPECT_LT(max_abs_diff(e.decoder_self[l], r.decoder_self[l]), 1e-5);
    EXPECT_LT(max_abs_diff(e.encoder_self[l], r.encoder_self[l]), 1e-5);
  }

  Rng rng(3);
  const TokenFaithfulness tf = alignment_faithfulness(*f.model, e, rng);
  const double p_full = std::exp(e.log_prob / static_cast<double>(e.output_ids.size() + 1));
  ASSERT_EQ(tf.deletion.prob.size(), size_t(S + 1));
  EXPECT_NEAR(tf.deletion.prob.front(), p_full, 1e-5);  // nothing removed: the hypothesis' own
  EXPECT_NEAR(tf.insertion.prob.back(), p_full, 1e-5);  // everything revealed
  EXPECT_NEAR(tf.deletion.prob.back(), tf.insertion.prob.front(), 1e-12);  // all <unk> both
  EXPECT_NEAR(tf.deletion_random.prob.front(), p_full, 1e-5);

  const Tensor mean = pick_map(e.cross, -1, -1);  // (T, S), the head mean of the last layer
  EXPECT_EQ(mean.shape(), Shape({T, S}));
  EXPECT_THROW(pick_map(e.cross, 2, -1), ValueError);
  EXPECT_THROW(pick_map(e.cross, 0, 2), ValueError);
}

TEST(ExplainTranslation, BadSources) {
  Fixture f = make_fixture();
  EXPECT_THROW(explain_translation(*f.tr, "  "), ValueError);
  try {
    explain_translation(*f.tr, "abz");
    FAIL() << "an unknown symbol must throw";
  } catch (const ValueError& err) {
    EXPECT_NE(std::string(err.what()).find("'z'"), std::string::npos) << err.what();
  }
  EXPECT_THROW(explain_translation(*f.tr, "abcabcabc"), ValueError);  // > 8
}

}  // namespace
}  // namespace focus
