// Text model files and TextPredictor: a text-transformer saved with its tokenizer loads back with
// the same weights, config, class names, temperature and tokenizer, and predicts the same
// logits from raw text; a text model is refused where an image model is expected, and saving or
// loading one without a tokenizer is a FormatError.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/infer/text_predictor.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/labelled.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::max_abs_diff;

namespace {
struct Saved {
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Classifier> model;
  ModelInfo info;
};

Saved make_saved() {
  Saved s;
  s.tok = train_tokenizer("word", {"good phone", "bad phone", "great battery", "awful screen"});
  Rng rng(11);
  s.model = make_classifier(
      "text_transformer",
      {{"vocab_size", s.tok->vocab().size()}, {"max_len", 6}, {"dim", 8}, {"depth", 1}, {"heads", 2}},
      rng);
  s.model->eval();
  s.info.class_names = {"negative", "positive"};
  s.info.task = "text";
  s.info.temperature = 1.5;
  s.info.tokenizer = s.tok->to_json().dump();
  return s;
}
}  // namespace

TEST(TextModelFile, RoundTripsWeightsTokenizerAndPredictions) {
  focus::testing::TempDir dir;
  const Saved s = make_saved();
  const std::string path = dir.file("m.safetensors");
  save_model(path, *s.model, s.info);
  LoadedClassifier lc = load_classifier(path);
  EXPECT_EQ(lc.model->name(), "text_transformer");
  EXPECT_EQ(lc.model->config(), s.model->config());
  EXPECT_EQ(lc.info.class_names, s.info.class_names);
  EXPECT_EQ(lc.info.temperature, 1.5);
  EXPECT_EQ(lc.info.tokenizer, s.info.tokenizer);
  const auto a = s.model->state_dict(), b = lc.model->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(max_abs_diff(b.at(name), t), 0.0) << name;

  const TextPredictor p(std::move(lc));
  const std::vector<std::string> texts = {"Good phone!", "awful, awful screen", "unseen words"};
  const Tensor z = p.logits(texts);
  std::vector<std::vector<int64_t>> rows;
  std::vector<const std::vector<int64_t>*> ptrs;
  for (const auto& t : texts) rows.push_back(encode_for_classification(*s.tok, t, 6));
  for (const auto& r : rows) ptrs.push_back(&r);
  // The predictor's fast path (infer/text_fast.hpp): the forward's logits up to float rounding.
  EXPECT_LT(max_abs_diff(z, s.model->forward(pad_token_rows(ptrs))), 1e-5);
  const auto preds = p.predict(texts);
  ASSERT_EQ(preds.size(), 3u);
  EXPECT_EQ(preds[0].tokens, (std::vector<std::string>{"good", "phone", "<unk>"}));
  double ws = 0, ps = 0;
  for (double w : preds[1].pooling) ws += w;
  for (double q : preds[1].probs) ps += q;
  EXPECT_NEAR(ws, 1.0, 1e-5);
  EXPECT_NEAR(ps, 1.0, 1e-12);
  // Calibrated: softmax(z / 1.5).
  const auto zv = z.to_vector<float>();
  const double p1 = 1 / (1 + std::exp((double(zv[0]) - double(zv[1])) / 1.5));
  EXPECT_NEAR(preds[0].probs[1], p1, 1e-6);
}

TEST(TextModelFile, TextModelsNeedTheirTokenizerAndAreNotImageModels) {
  focus::testing::TempDir dir;
  Saved s = make_saved();
  const std::string path = dir.file("m.safetensors");
  save_model(path, *s.model, s.info);
  expect_error<FormatError>([&] { load_model(path); }, {"text_transformer", "not an image model"});
  ModelInfo bare = s.info;
  bare.tokenizer.clear();
  expect_error<FormatError>([&] { save_model(dir.file("b.safetensors"), *s.model, bare); },
                            {"tokenizer"});
  // A file whose metadata lost the tokenizer.
  SafetensorsFile f = load_safetensors(path);
  f.metadata.erase("tokenizer");
  save_safetensors(dir.file("c.safetensors"), f.tensors, f.metadata);
  expect_error<FormatError>([&] { load_classifier(dir.file("c.safetensors")); },
                            {"c.safetensors", "no 'tokenizer'"});
}
