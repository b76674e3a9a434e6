// sasrec: config parsing, the whole model's gradients (every-position training logits, the shared
// item embedding) against central differences in double precision, padding invariance (a
// history's scores do not depend on the padding after it), causality (a position's output does
// not depend on later items), the training logits' rows and targets, bad input, the registry.
//   Letters: N batch, L positions, V items.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "focus/models/classifier.hpp"
#include "focus/models/sasrec.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "nn/module_gradcheck.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::max_abs_diff;
using nlohmann::json;

namespace {

SasRecConfig tiny() {
  return SasRecConfig::from_json(json{{"num_items", 9}, {"max_len", 6}, {"dim", 8}, {"depth", 1},
                                      {"heads", 2}, {"mlp_ratio", 1.0}, {"dropout", 0.0}});
}

Tensor ids(std::vector<int64_t> v, int64_t n, int64_t l) { return Tensor::from_vector(v, {n, l}); }

}  // namespace

TEST(SasRec, ConfigDefaultsAndErrors) {
  EXPECT_EQ(SasRecConfig::from_json(json::object()).to_json(), SasRecConfig{}.to_json());
  EXPECT_EQ(SasRecConfig::from_json(tiny().to_json()).to_json(), tiny().to_json());
  focus::testing::expect_error<ValueError>([] { SasRecConfig::from_json(json{{"items", 8}}); },
                                           {"unknown config key 'items'"});
  focus::testing::expect_error<ValueError>([] { SasRecConfig::from_json(json{{"num_items", 1}}); },
                                           {"num_items"});
  focus::testing::expect_error<ValueError>([] { SasRecConfig::from_json(json{{"dim", 10}, {"heads", 4}}); },
                                           {"heads", "10"});
}

TEST(SasRec, TrainingLogitsGradientsMatchFiniteDifferencesInDouble) {
  Rng rng(5);
  SasRec m(tiny(), rng);
  // Two histories, the second right-padded; targets -100 on padding.
  const Tensor x = ids({1, 2, 3, 4, 5, 6, 0, 0}, 2, 4);
  const Tensor y = ids({2, 3, 4, 7, 6, 8, -100, -100}, 2, 4);
  EXPECT_TRUE(focus::testing::module_gradcheck(
      m, [&](const std::vector<Tensor>&) { return m.forward_scored(x, y).first; }, {}));
}

TEST(SasRec, TrainingLogitsKeepTheTargetPositionsInOrder) {
  Rng rng(6);
  SasRec m(tiny(), rng);
  m.eval();
  const Tensor x = ids({1, 2, 3, 4, 5, 6, 0, 0}, 2, 4);
  const Tensor y = ids({2, 3, 4, 7, 6, 8, -100, -100}, 2, 4);
  const auto [logits, targets] = m.forward_scored(x, y);
  ASSERT_EQ(logits.shape(), (Shape{6, 9}));
  EXPECT_EQ(targets.to_vector<int64_t>(), (std::vector<int64_t>{2, 3, 4, 7, 6, 8}));
  // Row 5 (second history, position 1) equals forward's scores of the history {5, 6}.
  const Tensor f = m.forward(ids({5, 6}, 1, 2));  // (1, V)
  EXPECT_LT(max_abs_diff(logits.slice(0, 5, 6), f), 1e-5);
}

TEST(SasRec, ScoresIgnorePaddingAndLaterItems) {
  Rng rng(7);
  SasRec m(tiny(), rng);
  m.eval();
  const Tensor a = m.forward(ids({3, 1, 4}, 1, 3));               // (1, V)
  const Tensor b = m.forward(ids({3, 1, 4, 0, 0, 0, 2, 7, 8, 5, 6, 1}, 2, 6));  // padded, batched
  EXPECT_LT(max_abs_diff(a, b.slice(0, 0, 1)), 1e-5);
  // Causal: position 2's hidden state of {3, 1, 4, 5} equals that of {3, 1, 4}.
  const Tensor h4 = m.hidden(ids({3, 1, 4, 5}, 1, 4));  // (1, 4, D)
  const Tensor h3 = m.hidden(ids({3, 1, 4}, 1, 3));     // (1, 3, D)
  EXPECT_LT(max_abs_diff(h4.slice(1, 0, 3), h3), 1e-5);
  EXPECT_GT(max_abs_diff(m.forward(ids({3, 1, 5}, 1, 3)), a), 1e-4);  // the last item matters
}

TEST(SasRec, BadInputThrows) {
  Rng rng(8);
  SasRec m(tiny(), rng);
  focus::testing::expect_error<ValueError>([&] { m.forward(ids({1, 9}, 1, 2)); }, {"item id 9", "[0, 9)"});
  focus::testing::expect_error<ValueError>([&] { m.forward(ids({0, 1}, 1, 2)); }, {"empty"});
  focus::testing::expect_error<ShapeError>([&] { m.forward(ids({1, 2, 3, 4, 5, 6, 7}, 1, 7)); }, {"max_len = 6"});
  focus::testing::expect_error<ValueError>(
      [&] { m.forward_scored(ids({1, 2}, 1, 2), ids({-100, -100}, 1, 2)); }, {"without targets"});
}

TEST(SasRec, Registry) {
  Rng rng(9);
  auto m = make_classifier("sasrec", tiny().to_json(), rng);
  EXPECT_EQ(m->name(), "sasrec");
  EXPECT_EQ(m->input_kind(), "items");
  EXPECT_EQ(m->forward(ids({1, 2}, 1, 2)).shape(), (Shape{1, 9}));
}

TEST(SasRec, SampledNegativesScoreTheTargetFirstAndMatchTheFullLogits) {
  Rng rng(10);
  SasRecConfig c = tiny();
  c.negatives = 3;
  SasRec m(c, rng);
  m.train();  // dropout 0: training mode only switches the sampled loss on
  const Tensor x = ids({1, 2, 3, 4, 5, 6, 0, 0}, 2, 4);
  const Tensor y = ids({2, 3, 4, 7, 6, 8, -100, -100}, 2, 4);
  Rng* stream = nullptr;
  for (auto& [name, r] : m.named_rngs())
    if (name == "negatives.rng") stream = r;
  ASSERT_NE(stream, nullptr);
  const uint64_t seed = stream->seed(), offset = stream->offset();
  const auto [logits, targets] = m.forward_scored(x, y);
  ASSERT_EQ(logits.shape(), (Shape{6, 4}));
  EXPECT_EQ(targets.to_vector<int64_t>(), std::vector<int64_t>(6, 0));
  // Column 0 is the target's full-softmax logit.
  m.eval();
  const auto [full, ft] = m.forward_scored(x, y);
  const auto fv = full.to_vector<float>(), sv = logits.to_vector<float>();
  const auto tv = ft.to_vector<int64_t>();
  for (int64_t r = 0; r < 6; ++r) EXPECT_NEAR(sv[size_t(r * 4)], fv[size_t(r * 9 + tv[size_t(r)])], 1e-5);
  // Gradients through the sampled logits (the same draws each call: the stream reset).
  m.train();
  auto f = [&](const std::vector<Tensor>&) {
    stream->set_state(seed, offset);
    return m.forward_scored(x, y).first;
  };
  EXPECT_TRUE(focus::testing::module_gradcheck(m, f, {}));
  focus::testing::expect_error<ValueError>([] { SasRecConfig::from_json(json{{"negatives", -1}}); }, {"negatives"});
}
