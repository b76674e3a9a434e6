// text-transformer: config parsing, the whole model's gradients against central differences in
// double precision (the masked attention pooling and the masked encoder included), masking
// (padded positions get zero pooling weight, logits do not depend on the padding length),
// pooling weights summing to one, and the registry.
//   Letters: N batch, L tokens, H heads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "focus/models/classifier.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/nn/attention.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "nn/module_gradcheck.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::max_abs_diff;
using focus::testing::max_rel_diff;
using nlohmann::json;

namespace {

TextTransformerConfig tiny() {
  return TextTransformerConfig::from_json(
      json{{"vocab_size", 12}, {"max_len", 8}, {"num_classes", 3}, {"dim", 8}, {"depth", 1},
           {"heads", 2}, {"mlp_ratio", 1.5}, {"dropout", 0.0}});
}

Tensor ids(std::vector<int64_t> v, int64_t n, int64_t l) { return Tensor::from_vector(v, {n, l}); }

}  // namespace

TEST(TextTransformer, ConfigDefaultsAndErrors) {
  const TextTransformerConfig d = TextTransformerConfig::from_json(json::object());
  EXPECT_EQ(d.to_json(), TextTransformerConfig{}.to_json());
  EXPECT_EQ(TextTransformerConfig::from_json(tiny().to_json()).to_json(), tiny().to_json());
  focus::testing::expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"dims", 8}}); },
                                    {"unknown config key 'dims'"});
  focus::testing::expect_error<ValueError>(
      [] { TextTransformerConfig::from_json(json{{"dim", 10}, {"heads", 4}}); }, {"heads", "10"});
  focus::testing::expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"vocab_size", 0}}); },
                                    {"vocab_size"});
}

TEST(TextTransformer, GradientsMatchFiniteDifferencesInDouble) {
  Rng rng(3);
  TextTransformer m(tiny(), rng);
  // Two rows, the second padded: the pooling and encoder masks are in the differentiated path.
  const Tensor x = ids({4, 5, 6, 7, 8, 9, 10, 0, 0, 0}, 2, 5);
  EXPECT_TRUE(focus::testing::module_gradcheck(
      m, [&](const std::vector<Tensor>&) { return m.forward(x); }, {}));
}

TEST(TextTransformer, AttentionPoolingGradientsWithPaddingInDouble) {
  Rng rng(4);
  AttentionPooling pool({.d_model = 6, .n_heads = 2}, rng);
  AttentionMask mask;
  mask.key_padding_mask = padding_mask(ids({3, 4, 5, 0, 7, 8, 0, 0}, 2, 4));  // (N, L)
  EXPECT_TRUE(focus::testing::module_gradcheck(
      pool, [&](const std::vector<Tensor>& in) { return pool.forward(in[0], mask); },
      {focus::testing::rand_input({2, 4, 6}, rng)}));
}

TEST(TextTransformer, PaddingGetsZeroWeightAndChangesNothing) {
  Rng rng(5);
  TextTransformer m(tiny(), rng);
  m.eval();
  const Tensor alone = ids({4, 9, 6}, 1, 3);
  const Tensor padded = ids({4, 9, 6, 0, 0, 0, 0, 0}, 1, 8);
  const Tensor batch = ids({4, 9, 6, 0, 0, 11, 2, 3, 5, 7}, 2, 5);  // row 0 padded to 5
  const Tensor y1 = m.forward(alone), y2 = m.forward(padded), y3 = m.forward(batch);
  EXPECT_LT(max_rel_diff(y2, y1), 1e-5);
  EXPECT_LT(max_rel_diff(select(y3, 0, 0), select(y1, 0, 0)), 1e-5);
  const auto w = m.pooling_weights(padded).to_vector<float>();  // (1, 8)
  ASSERT_EQ(w.size(), 8u);
  double real = 0;
  for (int l = 0; l < 3; ++l) {
    EXPECT_GT(w[size_t(l)], 0.f);
    real += w[size_t(l)];
  }
  for (int l = 3; l < 8; ++l) EXPECT_EQ(w[size_t(l)], 0.f) << "position " << l;
  EXPECT_NEAR(real, 1.0, 1e-5);
  // The traced forward records the depth maps, then the pooling map last.
  ForwardTrace trace;
  const Tensor yt = m.forward_traced(batch, trace);
  ASSERT_EQ(trace.attention.size(), 2u);
  EXPECT_EQ(trace.attention[0].shape(), Shape({2, 2, 5, 5}));
  EXPECT_EQ(trace.attention[1].shape(), Shape({2, 2, 1, 5}));
  EXPECT_EQ(max_abs_diff(yt, y3), 0.0);
}

TEST(TextTransformer, RejectsBadInputsWithClearErrors) {
  Rng rng(6);
  TextTransformer m(tiny(), rng);
  focus::testing::expect_error<ShapeError>([&] { m.forward(Tensor::zeros({2, 3})); }, {"I64"});
  focus::testing::expect_error<ShapeError>([&] { m.forward(Tensor::ones({1, 9}, DType::I64)); },
                                    {"9 tokens", "max_len = 8"});
  focus::testing::expect_error<ValueError>([&] { m.forward(ids({4, 0, 0, 0}, 2, 2)); },
                                    {"row 1 holds only padding"});
  focus::testing::expect_error<ValueError>([&] { m.forward(ids({4, 12}, 1, 2)); },
                                    {"token id 12", "[0, 12)"});
}

TEST(TextTransformer, RegistryBuildsItAndRoundTripsItsConfig) {
  Rng rng(7);
  auto m = make_classifier("text_transformer", tiny().to_json(), rng);
  EXPECT_EQ(m->name(), "text_transformer");
  EXPECT_EQ(m->input_kind(), "text");
  EXPECT_EQ(m->config(), tiny().to_json());
  const auto names = classifier_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "text_transformer"), names.end());
  focus::testing::expect_error<ValueError>([&] { make_classifier("bert", json::object(), rng); },
                                    {"unknown model 'bert'"});
  EXPECT_EQ(make_classifier("vit", json::object(), rng)->input_kind(), "image");
}
