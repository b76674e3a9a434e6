// Text explanations (explain/text_explain.hpp): gradient x input against a central finite
// difference of the logit in the token's embedding scale; rollout rows (and the rolled-out
// pooling) summing to 1; pooling weights summing to 1; deletion faithfulness curves' ends; the
// n-gram branch's share summing to its centred target logit (and absent without the branch).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/nn/linear.hpp"
#include "focus/explain/text_explain.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/tokenizer.hpp"

using namespace focus;

namespace {

struct Fixture {
  std::unique_ptr<Tokenizer> tok = train_tokenizer("word", {"good bad plot movie was the a very"});
  Rng rng{21};
  TextTransformer model{TextTransformerConfig::from_json({{"vocab_size", tok->vocab().size()},
                                                          {"max_len", 10}, {"dim", 16}, {"depth", 2},
                                                          {"heads", 2}, {"dropout", 0.1}}),
                        rng};
  std::vector<int64_t> ids = tok->encode("the movie was very good");
};

double logit(TextTransformer& m, const std::vector<int64_t>& ids, int64_t k) {
  NoGradGuard ng;
  return m.forward(Tensor::from_vector(ids, {1, int64_t(ids.size())})).to(DType::F64).to_vector<double>()[size_t(k)];
}

}  // namespace

TEST(TextExplain, GradientTimesInputMatchesAFiniteDifference) {
  Fixture f;
  ASSERT_EQ(f.ids.size(), 5u);
  const TextExplanation e = explain_text(f.model, *f.tok, f.ids, 1);
  ASSERT_EQ(e.grad_input.size(), 5u);
  ASSERT_EQ(e.tokens[1], "movie");
  // Each token occurs once: scaling its embedding row by (1 + eps) scales e_l alone, and
  // d logit / d eps at 0 = sum_d g_ld e_ld.
  Tensor w = f.model.token_embedding().weight;
  const int64_t D = w.size(1);
  for (size_t l = 0; l < f.ids.size(); ++l) {
    float* row = w.data<float>() + f.ids[l] * D;
    const std::vector<float> saved(row, row + D);
    const double eps = 1e-2;
    for (int64_t d = 0; d < D; ++d) row[d] = float(saved[size_t(d)] * (1 + eps));
    const double up = logit(f.model, f.ids, 1);
    for (int64_t d = 0; d < D; ++d) row[d] = float(saved[size_t(d)] * (1 - eps));
    const double down = logit(f.model, f.ids, 1);
    std::copy(saved.begin(), saved.end(), row);
    const double fd = (up - down) / (2 * eps);
    EXPECT_NEAR(e.grad_input[l], fd, 2e-3 + 2e-2 * std::abs(fd)) << "token " << l;
  }
}

TEST(TextExplain, RolloutRowsAndPoolingSumToOne) {
  Fixture f;
  const TextExplanation e = explain_text(f.model, *f.tok, f.ids);
  const int64_t L = int64_t(f.ids.size());
  ASSERT_EQ(e.rollout_matrix.shape(), (Shape{L, L}));
  const auto R = e.rollout_matrix.to(DType::F64).to_vector<double>();
  for (int64_t i = 0; i < L; ++i) {
    double s = 0;
    for (int64_t j = 0; j < L; ++j) {
      EXPECT_GE(R[size_t(i * L + j)], 0.0);
      s += R[size_t(i * L + j)];
    }
    EXPECT_NEAR(s, 1.0, 1e-5) << "row " << i;
  }
  EXPECT_NEAR(std::accumulate(e.pooling.begin(), e.pooling.end(), 0.0), 1.0, 1e-5);
  EXPECT_NEAR(std::accumulate(e.rollout.begin(), e.rollout.end(), 0.0), 1.0, 1e-5);
  EXPECT_NEAR(std::accumulate(e.probs.begin(), e.probs.end(), 0.0), 1.0, 1e-6);
  EXPECT_EQ(e.target, int64_t(std::max_element(e.probs.begin(), e.probs.end()) - e.probs.begin()));
}

TEST(TextExplain, DeletionCurveStartsAtTheModelsProbability) {
  Fixture f;
  const TextExplanation e = explain_text(f.model, *f.tok, f.ids);
  Rng rng(4);
  const Faithfulness fa = text_faithfulness(f.model, f.ids, e.grad_input, e.target, rng, 3);
  ASSERT_EQ(fa.deletion.prob.size(), f.ids.size() + 1);
  EXPECT_NEAR(fa.deletion.prob.front(), e.probs[size_t(e.target)], 1e-5);
  EXPECT_NEAR(fa.deletion_random.prob.front(), e.probs[size_t(e.target)], 1e-5);
  // Everything deleted: every order ends at the same all-<unk> input.
  EXPECT_NEAR(fa.deletion.prob.back(), fa.deletion_random.prob.back(), 1e-5);
  EXPECT_NE(text_heatmap_line(e.tokens, e.grad_input, false).find("movie("), std::string::npos);
  EXPECT_NE(text_explanation_html(e, {"neg", "pos"}, "the <movie>").find("the &lt;movie&gt;"),
            std::string::npos);
}

TEST(TextExplain, NgramShareSumsToTheBranchsCentredLogit) {
  Fixture plain;
  EXPECT_TRUE(explain_text(plain.model, *plain.tok, plain.ids, 1).ngram.empty());
  auto tok = train_tokenizer("word", {"good bad plot movie was the a very"});
  Rng rng(22);
  TextTransformer m(TextTransformerConfig::from_json({{"vocab_size", tok->vocab().size()}, {"max_len", 10},
                                                     {"num_classes", 3}, {"dim", 8}, {"depth", 1},
                                                     {"heads", 2}, {"ngram_buckets", 31},
                                                     {"ngram_order", 3}, {"ngram_scale", 2.0}}),
                    rng);
  Tensor table = m.ngram_table();
  rng.fill_uniform(table.data<float>(), table.numel(), -1.f, 1.f);
  const std::vector<int64_t> ids = tok->encode("the movie was very very good");
  for (int64_t target : {0, 2}) {
    const TextExplanation e = explain_text(m, *tok, ids, target);
    ASSERT_EQ(e.ngram.size(), ids.size());
    NoGradGuard ng;
    const auto z = m.ngram_logits(Tensor::from_vector(ids, {1, int64_t(ids.size())}))
                       .to(DType::F64).to_vector<double>();  // (3)
    const double centred = z[size_t(target)] - (z[0] + z[1] + z[2]) / 3;
    EXPECT_NEAR(std::accumulate(e.ngram.begin(), e.ngram.end(), 0.0), centred, 1e-5) << target;
    EXPECT_GT(std::abs(centred), 1e-3);
  }
}
