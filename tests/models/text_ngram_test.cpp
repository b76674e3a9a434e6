// The n-gram branch's data side (models/text_ngram.hpp) and what text-transformer does with it:
// sublinear TF-IDF slot weights against a hand computation; word-bounded n-grams; the smooth IDF;
// the convex fit of the table (logistic and squared hinge), whose result must zero the gradient
// of an independently written loss (central differences in double) and be antisymmetric for two
// classes; the
// model's fitted table as a buffer (not trained, saved and loaded); rows longer than max_len
// (ngram_len): the encoder's logits equal those of the first max_len ids, the branch reads all;
// the config's checks.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/models/text_ngram.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/tokenizer.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::max_abs_diff;
using nlohmann::json;

namespace {

// 60 rows over ids 1..9, the label carried mostly by ids 1-3 (class 0) and 4-6 (class 1) plus
// noise ids 7-9; with three classes, id 9 leans to class 2.
void make_rows(int64_t K, std::vector<std::vector<int64_t>>& rows, std::vector<int64_t>& labels) {
  Rng rng(11);
  for (int i = 0; i < 60; ++i) {
    const int64_t y = rng.randint(K);
    std::vector<int64_t> r;
    const int64_t len = 2 + rng.randint(6);
    for (int64_t l = 0; l < len; ++l) {
      const double u = rng.uniform();
      r.push_back(u < 0.5 ? (y == 0 ? 1 + rng.randint(3) : y == 1 ? 4 + rng.randint(3) : 9)
                          : 1 + rng.randint(9));
    }
    rows.push_back(r);
    labels.push_back(y);
  }
}

// The fit's loss, written from the definition (text_ngram.hpp) with the features from
// text_ngram_row: mean over rows of s_i CE + |w|^2 / (2 C n).
double fit_loss(const std::vector<std::vector<int64_t>>& rows, const std::vector<int64_t>& y,
                int64_t K, int64_t order, int64_t B, const NgramFitOptions& o,
                const std::vector<double>& w, const std::vector<double>& c) {
  double v = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const NgramRow r = text_ngram_row(rows[i], order, B, o.idf, o.boundary);
    std::vector<double> z(c);
    for (size_t j = 0; j < r.bucket.size(); ++j)
      for (int64_t k = 0; k < K; ++k) {
        const double f = o.nb ? o.nb[r.bucket[j] * K + k] : 1.0;
        z[size_t(k)] += r.value[j] * f * w[size_t(r.bucket[j] * K + k)];
      }
    const double s = o.class_weights.empty() ? 1.0 : o.class_weights[size_t(y[i])];
    if (o.loss == "squared_hinge") {
      for (int64_t k = 0; k < K; ++k) {
        const double t = k == y[i] ? 1 : -1, h = std::max(0.0, 1 - t * z[size_t(k)]);
        v += s * h * h;
      }
      continue;
    }
    double m = z[0], se = 0;
    for (double zk : z) m = std::max(m, zk);
    for (double zk : z) se += std::exp(zk - m);
    v += s * (m + std::log(se) - z[size_t(y[i])]);
  }
  double r2 = 0;
  for (double wv : w) r2 += wv * wv;
  return (v + r2 / (2 * o.C)) / double(rows.size());
}

}  // namespace

TEST(TextNgram, TfIdfWeightsEqualAHandComputation) {
  const int64_t B = 1000003;
  const std::vector<int64_t> row = {5, 6, 5, 0, 0};  // unigrams 5 (twice), 6; padding after
  std::vector<float> idf(size_t(B), 1.0f);
  const int64_t b5 = text_ngram_bucket(&row[0], 1, B), b6 = text_ngram_bucket(&row[1], 1, B);
  idf[size_t(b5)] = 2.0f, idf[size_t(b6)] = 3.0f;
  std::vector<int64_t> bucket(5);
  std::vector<double> w(5);
  text_ngram_features(row.data(), 1, 5, 1, B, bucket.data(), w.data(), idf.data());
  const double v5 = (1 + std::log(2.0)) * 2, v6 = 3, norm = std::sqrt(v5 * v5 + v6 * v6);
  EXPECT_NEAR(w[0], v5 / norm / 2, 1e-12);
  EXPECT_NEAR(w[2], v5 / norm / 2, 1e-12);
  EXPECT_NEAR(w[1], v6 / norm, 1e-12);
  EXPECT_EQ(w[3], 0.0);
  EXPECT_EQ(w[4], 0.0);
  // text_ngram_row sums the slots per bucket: the TF-IDF vector, unit length.
  const NgramRow r = text_ngram_row({5, 6, 5}, 1, B, idf.data());
  ASSERT_EQ(r.bucket.size(), 2u);
  double n2 = 0;
  for (size_t j = 0; j < 2; ++j) {
    EXPECT_NEAR(r.value[j], (r.bucket[j] == b5 ? v5 : v6) / norm, 1e-6);
    n2 += double(r.value[j]) * r.value[j];
  }
  EXPECT_NEAR(n2, 1.0, 1e-6);
  // Without idf: the sqrt-normalised counts, as before (3 n-grams).
  text_ngram_features(row.data(), 1, 5, 1, B, bucket.data(), w.data());
  EXPECT_NEAR(w[0], 1 / std::sqrt(3.0), 1e-12);
}

TEST(TextNgram, WordBoundedNgramsNeverSpanABoundary) {
  // 7 is the boundary: row 4 5 7 6 8 with orders 1-3 keeps 4, 5, 7, 6, 8; 4 5, 5 7, 7 6, 6 8;
  // 4 5 7 and 7 6 8 (the boundary at an end), not 5 7 6 (inside).
  const int64_t B = 1000003;
  const std::vector<int64_t> row = {4, 5, 7, 6, 8};
  std::vector<int64_t> bucket(15);
  std::vector<double> w(15);
  text_ngram_features(row.data(), 1, 5, 3, B, bucket.data(), w.data(), nullptr, 7);
  std::vector<std::vector<int64_t>> kept;
  for (int64_t l = 0; l < 5; ++l)
    for (int64_t n = 1; n <= 3; ++n)
      if (w[size_t(l * 3 + n - 1)] != 0) kept.emplace_back(row.begin() + l, row.begin() + l + n);
  const std::vector<std::vector<int64_t>> want = {{4}, {4, 5}, {4, 5, 7}, {5}, {5, 7}, {7}, {7, 6},
                                                  {7, 6, 8}, {6}, {6, 8}, {8}};
  EXPECT_EQ(kept, want);
  for (size_t s = 0; s < 15; ++s)
    if (w[s] != 0) { EXPECT_NEAR(w[s], 1 / std::sqrt(11.0), 1e-12); }
  // Off (-1): 12 n-grams, 5 7 6 among them.
  text_ngram_features(row.data(), 1, 5, 3, B, bucket.data(), w.data());
  EXPECT_NEAR(w[1 * 3 + 2], 1 / std::sqrt(12.0), 1e-12);
}

TEST(TextNgram, IdfIsScikitLearnsSmoothIdf) {
  const int64_t B = 101;
  const std::vector<std::vector<int64_t>> rows = {{4, 4, 5}, {4}, {6}};
  const std::vector<float> idf = text_ngram_idf(rows, 1, B);
  auto at = [&](int64_t id) { return double(idf[size_t(text_ngram_bucket(&id, 1, B))]); };
  EXPECT_NEAR(at(4), std::log(4.0 / 3.0) + 1, 1e-6);  // in 2 of 3 rows (twice in one: counted once)
  EXPECT_NEAR(at(5), std::log(4.0 / 2.0) + 1, 1e-6);
  EXPECT_NEAR(at(7), std::log(4.0 / 1.0) + 1, 1e-6);  // in none
}

TEST(TextNgram, ConvexFitZeroesTheGradientOfTheLoss) {
  for (int64_t K : {2, 3}) {
    std::vector<std::vector<int64_t>> rows;
    std::vector<int64_t> y;
    make_rows(K, rows, y);
    const int64_t B = 31, order = 2;  // collisions included
    const std::vector<float> idf = text_ngram_idf(rows, order, B);
    const std::vector<double> nb = text_ngram_nb_ratios(rows, y, K, order, B, 1.0);
    for (int variant = 0; variant < 5; ++variant) {
      NgramFitOptions o;
      o.C = 4.0;
      o.lbfgs.tol_grad = 1e-10;
      o.lbfgs.tol_value = 0;
      if (variant >= 1) o.idf = idf.data();
      if (variant == 2) o.nb = nb.data(), o.class_weights.assign(size_t(K), 1.0), o.class_weights[0] = 3.0;
      if (variant >= 3) o.loss = "squared_hinge";  // one-vs-rest, a linear SVM's objective
      if (variant == 4) o.boundary = 9, o.idf = nullptr;  // id 9 ends words
      const NgramFit f = text_ngram_fit(rows, y, K, order, B, o);
      // Converged: the gradient test, or no further decrease at rounding level.
      EXPECT_TRUE(f.solver.stop == "gradient" || f.solver.stop == "value") << f.solver.stop;
      EXPECT_GT(f.train_accuracy, 0.7);
      // Central differences of the loss written above, over every weight and intercept.
      std::vector<double> w = f.w, c = f.intercept;
      const double h = 1e-5;
      double worst = 0;
      for (size_t q = 0; q < w.size() + c.size(); ++q) {
        double& v = q < w.size() ? w[q] : c[q - w.size()];
        const double keep = v;
        v = keep + h;
        const double up = fit_loss(rows, y, K, order, B, o, w, c);
        v = keep - h;
        const double down = fit_loss(rows, y, K, order, B, o, w, c);
        v = keep;
        worst = std::max(worst, std::abs(up - down) / (2 * h));
      }
      EXPECT_LT(worst, 1e-7) << K << " " << variant;
      EXPECT_NEAR(f.solver.value, fit_loss(rows, y, K, order, B, o, w, c), 1e-12);
      if (K == 2 && variant != 2) {  // two classes, no per-class ratios: w_1 = -w_0
        for (int64_t b = 0; b < B; ++b) EXPECT_NEAR(f.w[size_t(2 * b)], -f.w[size_t(2 * b + 1)], 1e-6);
      }
    }
  }
}

TEST(TextNgram, ConvexFitRejectsBadInput) {
  NgramFitOptions o;
  expect_error<ValueError>([&] { text_ngram_fit({{1}, {2}}, {0}, 2, 1, 7, o); }, {"2 rows and 1 labels"});
  expect_error<ValueError>([&] { text_ngram_fit({{1}, {}}, {0, 1}, 2, 1, 7, o); }, {"row 1 is empty"});
  expect_error<ValueError>([&] { text_ngram_fit({{1}, {2}}, {0, 2}, 2, 1, 7, o); }, {"row 1", "label 2"});
  o.C = 0;
  expect_error<ValueError>([&] { text_ngram_fit({{1}, {2}}, {0, 1}, 2, 1, 7, o); }, {"C 0"});
  o.C = 1, o.class_weights = {1.0};
  expect_error<ValueError>([&] { text_ngram_fit({{1}, {2}}, {0, 1}, 2, 1, 7, o); }, {"1 class weights"});
  o.class_weights = {1.0, -1.0};
  expect_error<ValueError>([&] { text_ngram_fit({{1}, {2}}, {0, 1}, 2, 1, 7, o); }, {"class weight"});
  o.class_weights.clear(), o.loss = "hinge";
  expect_error<ValueError>([&] { text_ngram_fit({{1}, {2}}, {0, 1}, 2, 1, 7, o); }, {"loss 'hinge'"});
}

TEST(TextNgram, ModelsFittedTableIsDataItsLogitsAreTheFitsAndItSurvivesAFile) {
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> y;
  make_rows(3, rows, y);
  const TextTransformerConfig cfg = TextTransformerConfig::from_json(
      json{{"vocab_size", 12}, {"max_len", 8}, {"num_classes", 3}, {"dim", 8}, {"depth", 1},
           {"heads", 2}, {"dropout", 0.0}, {"ngram_buckets", 53}, {"ngram_order", 2},
           {"ngram_scale", 2.5}, {"ngram_idf", true}, {"ngram_nb", 1.0}, {"ngram_fit", 2.0}});
  Rng rng(3);
  TextTransformer m(cfg, rng);
  m.eval();
  for (const auto& [name, t] : m.named_parameters()) EXPECT_NE(name, "ngram_table");
  bool buffer = false;
  for (const auto& [name, t] : m.named_buffers()) buffer = buffer || name == "ngram_table";
  EXPECT_TRUE(buffer);
  const Tensor x = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 0, 4, 9, 9, 5}, {2, 4});
  m.fit_ngram_nb(rows, y);
  m.fit_ngram_idf(rows);
  const NgramFit f = m.fit_ngram_table(rows, y);
  Tensor after, wide;
  {
    NoGradGuard ng;
    after = m.forward(x);
    wide = m.ngram_logits(x);
  }
  // The fit's logits (w applied to the features, plus the intercepts) are what the model adds.
  const Tensor nb = m.ngram_nb_ratio().to(DType::F64).contiguous();
  const Tensor idf = m.ngram_idf().contiguous();
  for (int64_t n = 0; n < 2; ++n) {
    std::vector<int64_t> r;
    for (int64_t l = 0; l < 4; ++l)
      if (x.to_vector<int64_t>()[size_t(n * 4 + l)] != 0) r.push_back(x.to_vector<int64_t>()[size_t(n * 4 + l)]);
    const NgramRow fr = text_ngram_row(r, 2, 53, idf.data<float>());
    for (int64_t k = 0; k < 3; ++k) {
      double z = 0;
      for (size_t j = 0; j < fr.bucket.size(); ++j)
        z += fr.value[j] * nb.data<double>()[fr.bucket[j] * 3 + k] * f.w[size_t(fr.bucket[j] * 3 + k)];
      EXPECT_NEAR(wide.to_vector<float>()[size_t(n * 3 + k)], z, 1e-4);
      // The head's weight is zero and its bias the intercepts: the logits are the fit's.
      EXPECT_NEAR(after.to_vector<float>()[size_t(n * 3 + k)], z + f.intercept[size_t(k)], 1e-4);
    }
  }
  // Saved and loaded: the same logits (the table, the ratios and the IDF travel as buffers).
  focus::testing::TempDir dir;
  ModelInfo info;
  info.tokenizer = train_tokenizer("char", {"abcdefghij"})->to_json().dump();
  save_model(dir.file("m.safetensors"), m, info);
  LoadedClassifier lc = load_classifier(dir.file("m.safetensors"));
  lc.model->eval();
  NoGradGuard ng;
  EXPECT_LT(max_abs_diff(lc.model->forward(x), after), 1e-6);
  // A model whose config does not ask for it refuses.
  TextTransformerConfig plain = cfg;
  plain.ngram_fit = 0;
  Rng rng2(3);
  TextTransformer p(plain, rng2);
  expect_error<ValueError>([&] { p.fit_ngram_table(rows, y); }, {"ngram_fit > 0"});
  plain.ngram_idf = false;
  Rng rng3(3);
  TextTransformer q(plain, rng3);
  expect_error<ValueError>([&] { q.fit_ngram_idf(rows); }, {"ngram_idf"});
}

TEST(TextNgram, RowsPastMaxLenFeedTheBranchOnly) {
  const TextTransformerConfig cfg = TextTransformerConfig::from_json(
      json{{"vocab_size", 12}, {"max_len", 4}, {"num_classes", 2}, {"dim", 8}, {"depth", 1},
           {"heads", 2}, {"dropout", 0.0}, {"ngram_buckets", 41}, {"ngram_order", 3},
           {"ngram_len", 9}});
  EXPECT_EQ(cfg.input_len(), 9);
  Rng rng(5);
  TextTransformer m(cfg, rng);
  m.eval();
  Rng noise(6);
  for (auto& [name, t] : m.named_parameters()) {
    std::vector<float> u(size_t(t.numel()));
    noise.fill_uniform(u.data(), t.numel(), -0.5f, 0.5f);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] += u[size_t(i)];
  }
  const Tensor lng = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9,  //
                                                              3, 3, 0, 0, 0, 0, 0, 0, 0},
                                         {2, 9});
  const Tensor sht = lng.slice(1, 0, 4).contiguous();  // the encoder's window
  NoGradGuard ng;
  const Tensor enc_long = sub(m.forward(lng), m.ngram_logits(lng));
  const Tensor enc_short = sub(m.forward(sht), m.ngram_logits(sht));
  EXPECT_LT(max_abs_diff(enc_long, enc_short), 1e-6);
  // The branch does read past the window: row 0's n-grams differ, row 1's do not.
  const Tensor d = sub(m.ngram_logits(lng), m.ngram_logits(sht));
  EXPECT_GT(std::abs(d.to_vector<float>()[0]) + std::abs(d.to_vector<float>()[1]), 1e-3);
  EXPECT_LT(std::abs(d.to_vector<float>()[2]) + std::abs(d.to_vector<float>()[3]), 1e-6);
  EXPECT_EQ(m.pooling_weights(lng).shape(), (Shape{2, 4}));
}

TEST(TextNgram, ConfigChecksTheNewKeysAndWritesThemOnlyWhenOn) {
  const json base = {{"max_len", 8}, {"ngram_buckets", 10}};
  EXPECT_FALSE(TextTransformerConfig::from_json(base).to_json().contains("ngram_idf"));
  EXPECT_FALSE(TextTransformerConfig::from_json(base).to_json().contains("ngram_len"));
  EXPECT_FALSE(TextTransformerConfig::from_json(base).to_json().contains("ngram_fit"));
  json on = base;
  on["ngram_idf"] = true, on["ngram_len"] = 20, on["ngram_fit"] = 3.0, on["ngram_order"] = 6;
  EXPECT_EQ(TextTransformerConfig::from_json(on).to_json(), TextTransformerConfig::from_json(
      TextTransformerConfig::from_json(on).to_json()).to_json());
  EXPECT_EQ(TextTransformerConfig::from_json(on).to_json()["ngram_len"], 20);
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"max_len", 8}, {"ngram_buckets", 10}, {"ngram_len", 5}}); },
                           {"ngram_len", ">= max_len 8"});
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"max_len", 8}, {"ngram_len", 20}}); },
                           {"ngram_len"});
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"ngram_idf", true}}); }, {"ngram_idf"});
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"vocab_size", 10}, {"ngram_buckets", 5}, {"ngram_boundary", 10}}); },
                           {"ngram_boundary", "[1, 10)"});
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"vocab_size", 10}, {"ngram_buckets", 5}, {"ngram_boundary", 0}}); },
                           {"ngram_boundary"});  // 0 is padding
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"ngram_buckets", 5}, {"ngram_fit_loss", "hinge"}}); },
                           {"ngram_fit_loss"});
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"ngram_fit", 1.0}}); }, {"ngram_fit"});
  expect_error<ValueError>([] { TextTransformerConfig::from_json(json{{"ngram_buckets", 10}, {"ngram_fit", -1.0}}); },
                           {"ngram_fit"});
}
