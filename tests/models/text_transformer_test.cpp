// text-transformer: config parsing, the whole model's gradients against central differences in
// double precision (the masked attention pooling and the masked encoder included), masking
// (padded positions get zero pooling weight, logits do not depend on the padding length),
// pooling weights summing to one, and the registry. The n-gram branch: its logits against a
// reference summed by hand from the table (scale x sum / sqrt(count)), its gradients (the
// table's included) against central differences, padding invariance, the hash pinned, old
// configs unchanged. NB-weighted n-grams: the log-count ratios against a hand computation, the
// branch against the ratio-weighted sum, gradients in double, the config and its errors.
//   Letters: N batch, L tokens, H heads.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/models/classifier.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/nn/attention.hpp"
#include "focus/ops/elementwise.hpp"
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
  // The n-gram branch: off by default, and a config without its keys writes none (old files
  // read and write as before); when on, both keys are written.
  EXPECT_EQ(d.ngram_buckets, 0);
  EXPECT_FALSE(tiny().to_json().contains("ngram_buckets"));
  EXPECT_FALSE(tiny().to_json().contains("ngram_order"));
  json on = tiny().to_json();
  on["ngram_buckets"] = 100;
  EXPECT_EQ(TextTransformerConfig::from_json(on).to_json()["ngram_order"], 2);
  EXPECT_EQ(TextTransformerConfig::from_json(on).to_json()["ngram_scale"], 1.0);
  focus::testing::expect_error<ValueError>(
      [] { TextTransformerConfig::from_json(json{{"ngram_buckets", -1}}); }, {"ngram_buckets", ">= 0"});
  focus::testing::expect_error<ValueError>(
      [] { TextTransformerConfig::from_json(json{{"ngram_buckets", 8}, {"ngram_order", 7}}); },
      {"ngram_order", "[1, 6]"});
  focus::testing::expect_error<ValueError>(
      [] { TextTransformerConfig::from_json(json{{"ngram_buckets", 8}, {"ngram_scale", 0}}); },
      {"ngram_scale", "positive"});
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

namespace {

TextTransformerConfig tiny_ngram(int64_t buckets, int64_t order, double scale = 1.0) {
  TextTransformerConfig c = tiny();
  c.ngram_buckets = buckets;
  c.ngram_order = order;
  c.ngram_scale = scale;
  return c;
}

Tensor param(const Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  ADD_FAILURE() << "no parameter " << name;
  return Tensor();
}

// Fills every parameter of m with uniform noise in +-0.5 (the n-gram table starts at zero).
void perturb(Module& m, uint64_t seed) {
  Rng rng(seed);
  for (auto& [name, t] : m.named_parameters()) {
    std::vector<float> noise(size_t(t.numel()));
    rng.fill_uniform(noise.data(), t.numel(), -0.5f, 0.5f);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] += noise[size_t(i)];
  }
}

}  // namespace

TEST(TextTransformer, NgramHashIsPinned) {
  // Saved tables depend on the hash: these values must not change across platforms or releases.
  const int64_t a[] = {4, 5, 6};
  EXPECT_EQ(text_ngram_bucket(a, 1, 1000003), 915169);
  EXPECT_EQ(text_ngram_bucket(a, 2, 1000003), 839901);
  EXPECT_EQ(text_ngram_bucket(a, 3, 1000003), 122795);
  EXPECT_NE(text_ngram_bucket(a, 2, 1000003), text_ngram_bucket(a + 1, 2, 1000003));
}

TEST(TextTransformer, NgramBranchEqualsAReferenceSummedFromTheTable) {
  Rng rng(8), rng_plain(8);
  TextTransformer m(tiny_ngram(13, 2, 2.5), rng);
  TextTransformer plain(tiny(), rng_plain);
  m.eval();
  plain.eval();
  // The branch draws nothing from the seed: every other tensor equals the plain model's.
  for (const auto& [name, t] : plain.named_parameters())
    EXPECT_EQ(max_abs_diff(t, param(m, name)), 0.0) << name;
  // It starts at zero: the logits are the plain model's.
  const Tensor x = ids({4, 5, 6, 0, 0, 7, 3, 7, 3, 9}, 2, 5);  // row 0 padded
  EXPECT_LT(max_abs_diff(m.forward(x), plain.forward(x)), 1e-6);
  perturb(m, 9);
  NamedTensors rest = plain.named_parameters();
  for (auto& [name, t] : rest) t.copy_(param(m, name));  // the same perturbation of the rest
  const Tensor table = param(m, "ngram_table");  // (13, 3)
  auto row = [&](std::vector<int64_t> g) {
    return table.select(0, text_ngram_bucket(g.data(), int64_t(g.size()), 13)).to(DType::F64);
  };
  // Row 0: 4, 5, 6, 4 5, 5 6. Row 1: 7, 3, 7, 3, 9, 7 3 (twice), 3 7, 3 9.
  const Tensor r0 = mul(add(add(add(add(row({4}), row({5})), row({6})), row({4, 5})), row({5, 6})), 2.5 / std::sqrt(5.0));
  Tensor r1 = row({9});
  for (auto g : std::vector<std::vector<int64_t>>{{7}, {3}, {7}, {3}, {7, 3}, {3, 7}, {7, 3}, {3, 9}})
    r1 = add(r1, row(g));
  r1 = mul(r1, 2.5 / 3);  // 9 n-grams
  const Tensor wide = m.ngram_logits(x);  // (2, 3)
  EXPECT_LT(max_abs_diff(select(wide, 0, 0).to(DType::F64), r0), 1e-6);
  EXPECT_LT(max_abs_diff(select(wide, 0, 1).to(DType::F64), r1), 1e-6);
  EXPECT_LT(max_abs_diff(m.forward(x), add(plain.forward(x), wide)), 1e-5);
  // Off: zeros.
  EXPECT_EQ(max_abs_diff(plain.ngram_logits(x), Tensor::zeros({2, 3})), 0.0);
}

TEST(TextTransformer, NgramBranchGradientsMatchFiniteDifferencesInDouble) {
  for (int64_t order : {1, 3}) {
    Rng rng(10 + uint64_t(order));
    TextTransformer m(tiny_ngram(7, order, 3.0), rng);  // 7 buckets: collisions in the table
    perturb(m, 20 + uint64_t(order));
    const Tensor x = ids({4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 3, 0, 0, 0, 0}, 3, 5);
    EXPECT_TRUE(focus::testing::module_gradcheck(
        m, [&](const std::vector<Tensor>&) { return m.forward(x); }, {}))
        << "order " << order;
  }
}

TEST(TextTransformer, NgramBranchIgnoresTrailingPadding) {
  Rng rng(12);
  TextTransformer m(tiny_ngram(50, 3), rng);
  perturb(m, 13);
  m.eval();
  const Tensor alone = ids({4, 9, 6}, 1, 3);
  const Tensor padded = ids({4, 9, 6, 0, 0, 0, 0, 0}, 1, 8);
  const Tensor batch = ids({4, 9, 6, 0, 0, 11, 2, 3, 5, 7}, 2, 5);
  const Tensor w1 = m.ngram_logits(alone);
  EXPECT_LT(max_rel_diff(m.ngram_logits(padded), w1), 1e-6);
  EXPECT_LT(max_rel_diff(select(m.ngram_logits(batch), 0, 0), select(w1, 0, 0)), 1e-6);
  const Tensor y1 = m.forward(alone);
  EXPECT_LT(max_rel_diff(m.forward(padded), y1), 1e-5);
  EXPECT_LT(max_rel_diff(select(m.forward(batch), 0, 0), select(y1, 0, 0)), 1e-5);
}

// ---- NB-weighted n-grams (NBSVM) ----------------------------------------------------------------

TEST(TextTransformer, NgramNbConfigIsCheckedAndWrittenOnlyWhenOn) {
  TextTransformerConfig c = tiny_ngram(100, 2);
  EXPECT_FALSE(c.to_json().contains("ngram_nb"));
  json on = c.to_json();
  on["ngram_nb"] = 0.5;
  EXPECT_EQ(TextTransformerConfig::from_json(on).to_json()["ngram_nb"], 0.5);
  focus::testing::expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"ngram_nb", 1.0}}); },
                           {"ngram_nb", "ngram_buckets > 0"});
  focus::testing::expect_error<ValueError>(
      [] { TextTransformerConfig::from_json(json{{"ngram_buckets", 8}, {"ngram_nb", -1.0}}); },
      {"ngram_nb", ">= 0"});
  // Off: no buffer (files without the key load as before); on: the buffer, zero until fitted.
  Rng rng(1), rng_nb(1);
  TextTransformer plain(tiny_ngram(100, 2), rng);
  EXPECT_TRUE(plain.named_buffers().empty());
  EXPECT_FALSE(plain.ngram_nb_ratio().defined());
  TextTransformerConfig nb = tiny_ngram(100, 2);
  nb.ngram_nb = 1.0;
  TextTransformer m(nb, rng_nb);
  ASSERT_EQ(m.named_buffers().size(), 1u);
  EXPECT_EQ(m.named_buffers()[0].first, "ngram_nb_ratio");
  EXPECT_EQ(m.named_parameters().size(), plain.named_parameters().size());  // no new parameter
}

TEST(TextTransformer, NgramNbRatiosEqualAHandComputation) {
  // Unigrams and bigrams, 1000003 buckets (no collisions among these few ids), alpha 1, K = 2.
  // Rows (label): {4 5 4} (1), {4 6} (0), {7} (0). Each row counts a bucket once (binary).
  const int64_t B = 1000003;
  const std::vector<std::vector<int64_t>> rows = {{4, 5, 4}, {4, 6}, {7}};
  const std::vector<int64_t> labels = {1, 0, 0};
  const std::vector<double> r = text_ngram_nb_ratios(rows, labels, 2, 2, B, 1.0);
  ASSERT_EQ(r.size(), size_t(B * 2));
  auto at = [&](std::vector<int64_t> g, int64_t k) {
    return r[size_t(text_ngram_bucket(g.data(), int64_t(g.size()), B) * 2 + k)];
  };
  // Buckets seen: 4, 5, 45, 54 (class 1); 4, 6, 46, 7 (class 0): 7 distinct n-grams.
  // Class 1 counts: 4:1 5:1 45:1 54:1, others 0 -> sum (c1 + 1) = 4 x 2 + 3 x 1 = 11.
  // Rest (class 0) counts: 4:1 6:1 46:1 7:1 -> sum (c0 + 1) = 4 x 2 + 3 x 1 = 11.
  const double l2 = std::log(2.0), l1 = 0.0, n = std::log(11.0);
  EXPECT_NEAR(at({4}, 1), (l2 - n) - (l2 - n), 1e-12);      // in both classes: 0
  EXPECT_NEAR(at({5}, 1), (l2 - n) - (l1 - n), 1e-12);      // class 1 only: log 2
  EXPECT_NEAR(at({4, 5}, 1), std::log(2.0), 1e-12);
  EXPECT_NEAR(at({5, 4}, 1), std::log(2.0), 1e-12);
  EXPECT_NEAR(at({6}, 1), -std::log(2.0), 1e-12);           // class 0 only
  EXPECT_NEAR(at({7}, 0), std::log(2.0), 1e-12);            // class 0 against the rest
  EXPECT_NEAR(at({5}, 0), -std::log(2.0), 1e-12);
  const int64_t unseen[] = {9};
  EXPECT_EQ(r[size_t(text_ngram_bucket(unseen, 1, B) * 2)], 0.0);  // no row holds it: 0
  // Three classes, one row each, unigrams: 4 in classes 0 and 1, 5 in class 2 only.
  const std::vector<double> r3 = text_ngram_nb_ratios({{4}, {4}, {5}}, {0, 1, 2}, 3, 1, B, 1.0);
  const int64_t u4[] = {4}, u5[] = {5};
  const size_t b4 = size_t(text_ngram_bucket(u4, 1, B)), b5 = size_t(text_ngram_bucket(u5, 1, B));
  // Class 2: c(4) = 0, c(5) = 1 -> sums 1 + 2 = 3; rest: c(4) = 2, c(5) = 0 -> sums 3 + 1 = 4.
  EXPECT_NEAR(r3[b5 * 3 + 2], std::log(2.0 / 3) - std::log(1.0 / 4), 1e-12);
  EXPECT_NEAR(r3[b4 * 3 + 2], std::log(1.0 / 3) - std::log(3.0 / 4), 1e-12);
  // Bad input: a clear error, no abort.
  focus::testing::expect_error<ValueError>([&] { text_ngram_nb_ratios(rows, {1, 0}, 2, 2, B, 1.0); }, {"3 rows but 2 labels"});
  focus::testing::expect_error<ValueError>([&] { text_ngram_nb_ratios(rows, {1, 0, 2}, 2, 2, B, 1.0); }, {"row 2", "label 2"});
  focus::testing::expect_error<ValueError>([&] { text_ngram_nb_ratios(rows, labels, 2, 2, B, 0.0); }, {"alpha"});
}

TEST(TextTransformer, NgramNbBranchEqualsTheRatioWeightedSumAndItsGradientsCheck) {
  Rng rng(30), rng_plain(30);
  TextTransformerConfig c = tiny_ngram(13, 2, 2.5);
  c.ngram_nb = 0.5;
  TextTransformer m(c, rng);
  TextTransformer plain(tiny_ngram(13, 2, 2.5), rng_plain);  // the same branch without the ratios
  focus::testing::expect_error<ValueError>([&] { plain.fit_ngram_nb({{4}}, {0}); }, {"ngram_nb > 0"});
  focus::testing::expect_error<ValueError>([&] { m.fit_ngram_nb({{4}, {}}, {0, 1}); }, {"row 1 is empty"});
  focus::testing::expect_error<ValueError>([&] { m.fit_ngram_nb({{4, 12}}, {0}); }, {"token id 12", "[0, 12)"});
  m.fit_ngram_nb({{4, 5, 6}, {7, 3}, {4, 9}, {3, 3, 8}}, {0, 1, 2, 1});
  perturb(m, 31);
  for (auto& [name, t] : plain.named_parameters()) t.copy_(param(m, name));
  m.eval();
  plain.eval();
  const Tensor x = ids({4, 5, 6, 0, 0, 7, 3, 7, 3, 9}, 2, 5);  // row 0 padded
  // By hand: every slot's table row times its ratio row (the same bucket), summed, scaled.
  const Tensor table = param(m, "ngram_table").to(DType::F64), ratio = m.ngram_nb_ratio().to(DType::F64);
  auto row = [&](std::vector<int64_t> g) {
    const int64_t b = text_ngram_bucket(g.data(), int64_t(g.size()), 13);
    return mul(table.select(0, b), ratio.select(0, b));
  };
  Tensor r0 = row({4});
  for (auto g : std::vector<std::vector<int64_t>>{{5}, {6}, {4, 5}, {5, 6}}) r0 = add(r0, row(g));
  r0 = mul(r0, 2.5 / std::sqrt(5.0));
  const Tensor wide = m.ngram_logits(x);  // (2, 3)
  EXPECT_LT(max_abs_diff(select(wide, 0, 0).to(DType::F64), r0), 1e-5);
  EXPECT_GT(max_abs_diff(wide, plain.ngram_logits(x)), 1e-3);  // the ratios matter
  EXPECT_LT(max_abs_diff(m.forward(x), add(sub(plain.forward(x), plain.ngram_logits(x)), wide)), 1e-5);
  // The effective table (explain, fast path) is the table times the ratios.
  EXPECT_LT(max_abs_diff(m.ngram_effective_table(), mul(table, ratio)), 1e-12);
  // Gradients in double (the ratios are fixed data: no gradient, not a parameter).
  TextTransformer md(c, rng);
  md.fit_ngram_nb({{4, 5, 6}, {7, 3}, {4, 9}, {3, 3, 8}}, {0, 1, 2, 1});
  perturb(md, 32);
  const Tensor xd = ids({4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 3, 0, 0, 0, 0}, 3, 5);
  EXPECT_TRUE(focus::testing::module_gradcheck(
      md, [&](const std::vector<Tensor>&) { return md.forward(xd); }, {}));
}
