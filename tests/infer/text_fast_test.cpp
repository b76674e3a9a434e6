// The fast text-transformer inference path (infer/text_fast.hpp) against the model's reference
// forward: logits within 1e-4 + 1e-4 |x| and pooling weights within 1e-5, at several lengths
// and batch sizes, padded or not, with and without the n-gram branch (NB-weighted; with TF-IDF
// weights, rows longer than the encoder's max_len and the convex fit), with every
// parameter perturbed off its initial value (so biases and LayerNorm affine terms count); the model's input checks with the same error types;
// TextPredictor's two paths agree on logits and predictions. CTest reruns it under
// FOCUS_FORCE_ISA=avx2 and scalar.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "data/temp_dir.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/infer/text_fast.hpp"
#include "focus/infer/text_predictor.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/labelled.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::max_abs_diff;

namespace {

std::unique_ptr<TextTransformer> make_model(const TextTransformerConfig& c, uint64_t seed) {
  Rng rng(seed);
  auto m = std::make_unique<TextTransformer>(c, rng);
  for (auto& [name, t] : m->named_parameters()) {
    std::vector<float> noise(size_t(t.numel()));
    rng.fill_uniform(noise.data(), t.numel(), -0.3f, 0.3f);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] += noise[size_t(i)];
  }
  m->eval();
  return m;
}

// (N, L) ids, row n holding lengths[n] ids in [1, V) then padding.
Tensor random_ids(const std::vector<int64_t>& lengths, int64_t L, int64_t V, Rng& rng) {
  std::vector<int64_t> v(lengths.size() * size_t(L), 0);
  for (size_t n = 0; n < lengths.size(); ++n)
    for (int64_t l = 0; l < lengths[n]; ++l) v[n * size_t(L) + size_t(l)] = 1 + rng.randint(V - 1);
  return Tensor::from_vector(v, {int64_t(lengths.size()), L});
}

// Largest |a - b| / (1e-4 + 1e-4 |b|): <= 1 is within the stated tolerance.
double worst_ratio(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double w = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    w = std::max(w, std::abs(double(x[i]) - double(y[i])) / (1e-4 + 1e-4 * std::abs(double(y[i]))));
  return w;
}

// Fits what m's n-gram branch learns from data (NB ratios, IDF, the convex fit of the table) on
// 40 random rows with random labels (non-zero values on many buckets).
void fit_random_ratios(TextTransformer& m, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> labels;
  for (int i = 0; i < 40; ++i) {
    std::vector<int64_t> r(size_t(3 + rng.randint(10)));
    for (auto& id : r) id = 1 + rng.randint(m.cfg().vocab_size - 1);
    rows.push_back(r);
    labels.push_back(rng.randint(m.cfg().num_classes));
  }
  if (m.cfg().ngram_nb > 0) m.fit_ngram_nb(rows, labels);
  if (m.cfg().ngram_idf) m.fit_ngram_idf(rows);
  if (m.cfg().ngram_fit > 0) m.fit_ngram_table(rows, labels);
}

}  // namespace

TEST(TextFastPath, EqualsTheReferenceForwardAtSeveralLengthsAndBatches) {
  struct Case {
    TextTransformerConfig cfg;
    std::vector<std::vector<int64_t>> batches;  // row lengths; L = the first row's
  };
  TextTransformerConfig a;
  a.vocab_size = 50, a.max_len = 70, a.num_classes = 3, a.dim = 16, a.depth = 2, a.heads = 4;
  TextTransformerConfig b = a;
  b.dim = 12, b.heads = 2, b.depth = 1, b.mlp_ratio = 1.5, b.num_classes = 2;  // Dh 6, F 18
  TextTransformerConfig c = a;
  c.depth = 0, c.heads = 1;  // embeddings, final norm and pooling only; Dh 16
  TextTransformerConfig d = b;  // the n-gram branch: trigrams, collisions (97 buckets), scaled
  d.ngram_buckets = 97, d.ngram_order = 3, d.ngram_scale = 4.0;
  TextTransformerConfig e = d;  // NB-weighted n-grams: the ratios fitted on random rows below
  e.ngram_nb = 0.5;
  TextTransformerConfig f = e;  // + TF-IDF weights, whole-text rows past max_len, convex fit
  f.max_len = 8, f.ngram_idf = true, f.ngram_len = 70, f.ngram_fit = 2.0;
  const std::vector<std::vector<int64_t>> batches = {
      {1}, {5}, {64}, {70}, {17, 17, 3}, {64, 40, 17, 5}, {33, 1, 33, 20, 9, 33, 2, 30, 31}};
  uint64_t seed = 1;
  TextTransformerConfig g = f;  // + word-bounded n-grams, a squared-hinge fit
  g.ngram_boundary = 7, g.ngram_fit_loss = "squared_hinge";
  for (const TextTransformerConfig& cfg : {a, b, c, d, e, f, g}) {
    auto m = make_model(cfg, seed++);
    if (cfg.ngram_buckets > 0) fit_random_ratios(*m, seed);
    if (cfg.ngram_fit > 0)  // the fit zeroed the head's weight: give the encoder a say again
      for (auto& [name, t] : m->named_parameters())
        if (name == "head.weight") {
          Rng r(seed + 77);
          std::vector<float> u(size_t(t.numel()));
          r.fill_uniform(u.data(), t.numel(), -0.5f, 0.5f);
          std::copy(u.begin(), u.end(), t.data<float>());
        }
    auto fast = TextFastPath::build(*m);
    ASSERT_NE(fast, nullptr);
    Rng rng(seed++);
    for (const auto& lens : batches) {
      const Tensor x = random_ids(lens, lens[0], cfg.vocab_size, rng);
      NoGradGuard no_grad;
      Tensor w;
      const Tensor z = fast->logits(x, &w);
      const Tensor ref = m->forward(x);
      ASSERT_EQ(z.shape(), ref.shape());
      EXPECT_LE(worst_ratio(z, ref), 1.0) << "dim " << cfg.dim << " rows " << lens.size() << " L " << lens[0];
      EXPECT_LT(max_abs_diff(w, m->pooling_weights(x)), 1e-5);
      // Twice through the same workspace: the same logits (no state leaks between calls).
      EXPECT_EQ(max_abs_diff(fast->logits(x), z), 0.0);
    }
  }
}

TEST(TextFastPath, ChecksItsInputLikeTheModel) {
  TextTransformerConfig cfg;
  cfg.vocab_size = 20, cfg.max_len = 8, cfg.dim = 8, cfg.depth = 1, cfg.heads = 2;
  auto m = make_model(cfg, 3);
  auto fast = TextFastPath::build(*m);
  ASSERT_NE(fast, nullptr);
  expect_error<ValueError>([&] { fast->logits(Tensor::from_vector(std::vector<int64_t>{3, 20}, {1, 2})); },
                           {"token id 20", "row 0, position 1", "[0, 20)"});
  expect_error<ValueError>([&] { fast->logits(Tensor::from_vector(std::vector<int64_t>{3, 4, 0, 0}, {2, 2})); },
                           {"row 1 holds only padding"});
  expect_error<ShapeError>([&] { fast->logits(Tensor::from_vector(std::vector<int64_t>(9, 1), {1, 9})); },
                           {"9 tokens", "max_len = 8"});
  expect_error<ShapeError>([&] { fast->logits(Tensor::zeros({1, 4})); }, {"I64"});
  // Rows past max_len (ngram_len): the ids after the encoder's window are checked too, and the
  // encoder's window must hold a token.
  cfg.ngram_buckets = 31, cfg.ngram_len = 12;
  auto w = make_model(cfg, 4);
  auto wf = TextFastPath::build(*w);
  ASSERT_NE(wf, nullptr);
  std::vector<int64_t> v(12, 1);
  v[11] = 20;
  for (auto run : {std::function<void()>([&] { wf->logits(Tensor::from_vector(v, {1, 12})); }),
                   std::function<void()>([&] { w->forward(Tensor::from_vector(v, {1, 12})); })})
    expect_error<ValueError>(run, {"token id 20", "row 0, position 11"});
  expect_error<ShapeError>([&] { wf->logits(Tensor::from_vector(std::vector<int64_t>(13, 1), {1, 13})); },
                           {"13 tokens", "ngram_len = 12"});
  expect_error<ShapeError>([&] { w->forward(Tensor::from_vector(std::vector<int64_t>(13, 1), {1, 13})); },
                           {"13 tokens", "ngram_len = 12"});
  std::vector<int64_t> late(12, 0);
  late[10] = 3;  // a token only past the encoder's 8
  expect_error<ValueError>([&] { wf->logits(Tensor::from_vector(late, {1, 12})); }, {"row 0 holds no token", "first max_len = 8"});
  expect_error<ValueError>([&] { w->forward(Tensor::from_vector(late, {1, 12})); }, {"row 0 holds no token", "first max_len = 8"});
}

TEST(TextFastPath, PredictorPathsAgree) {
  focus::testing::TempDir dir;
  auto tok = train_tokenizer("word", {"good phone", "bad phone", "great battery", "awful screen"});
  // Without the n-gram branch (as files before it), with it, with it NB-weighted (64 + 1), with
  // rows longer than the encoder's max_len (66: ngram_len 12, the texts below reach 9 tokens).
  for (int64_t buckets : {0, 64, 65, 66}) {
    TextTransformerConfig cfg;
    cfg.vocab_size = tok->vocab().size(), cfg.max_len = buckets == 66 ? 3 : 6, cfg.dim = 8, cfg.depth = 1,
    cfg.heads = 2;
    cfg.ngram_buckets = buckets;
    cfg.ngram_nb = buckets == 65 ? 1.0 : 0.0;
    cfg.ngram_len = buckets == 66 ? 12 : 0;
    auto m = make_model(cfg, 5);
    if (cfg.ngram_nb > 0) fit_random_ratios(*m, 6);
    ModelInfo info;
    info.class_names = {"negative", "positive"};
    info.task = "text";
    info.tokenizer = tok->to_json().dump();
    const std::string path = dir.file("m" + std::to_string(buckets) + ".safetensors");
    save_model(path, *m, info);
    // Without the branch the file's config holds no n-gram key: the file is what it was before.
    const auto meta = load_safetensors(path).metadata;
    EXPECT_EQ(meta.at("model_config").find("ngram") == std::string::npos, buckets == 0);
    EXPECT_EQ(meta.at("model_config").find("ngram_nb") == std::string::npos, buckets != 65);
    TextPredictor p = TextPredictor::load(path);
    EXPECT_EQ(p.path(), TextPath::Fast);
    if (buckets == 65) {  // the ratios travel in the file
      auto reread = load_classifier(path);
      auto* tt = dynamic_cast<TextTransformer*>(reread.model.get());
      ASSERT_NE(tt, nullptr);
      EXPECT_EQ(max_abs_diff(tt->ngram_nb_ratio(), m->ngram_nb_ratio()), 0.0);
      EXPECT_GT(max_abs_diff(tt->ngram_nb_ratio(), Tensor::zeros({65, 2})), 0.1);
    }
    const std::vector<std::string> texts = {"Good phone!", "awful, awful screen", "unseen words",
                                            "good phone , great battery , awful screen"};
    const Tensor zf = p.logits(texts);
    const auto pf = p.predict(texts);
    p.set_path(TextPath::Reference);
    EXPECT_EQ(p.path(), TextPath::Reference);
    const Tensor zr = p.logits(texts);
    const auto pr = p.predict(texts);
    EXPECT_LE(worst_ratio(zf, zr), 1.0) << buckets << " buckets";
    ASSERT_EQ(pf.size(), pr.size());
    for (size_t i = 0; i < pf.size(); ++i) {
      EXPECT_EQ(pf[i].tokens, pr[i].tokens);
      ASSERT_EQ(pf[i].pooling.size(), pr[i].pooling.size());
      ASSERT_EQ(pf[i].pooling.size(), pf[i].tokens.size());
      double sum = 0;  // the pooling weights sum to 1 over the encoder's tokens, 0 after them
      for (size_t t = 0; t < pf[i].pooling.size(); ++t) {
        sum += pf[i].pooling[t];
        if (int64_t(t) >= cfg.max_len) { EXPECT_EQ(pf[i].pooling[t], 0.0); }
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
      for (size_t t = 0; t < pf[i].pooling.size(); ++t) EXPECT_NEAR(pf[i].pooling[t], pr[i].pooling[t], 1e-5);
      for (size_t k = 0; k < pf[i].probs.size(); ++k) EXPECT_NEAR(pf[i].probs[k], pr[i].probs[k], 1e-5);
    }
  }
}
