// The int8 plan and its guardrail (infer/quantize.hpp) on a tiny cnn_se: a head whose weights
// are one outlier per output channel (on a dead feature) and small values that int8 rounds to
// zero (so an all-int8
// model's logits are all equal and it predicts class 0), on images labelled with the F32 model's
// own predictions (none of them 0 here: asserted). With every
// layer int8 the validation accuracy collapses and quantize_model_file refuses (no file); with a
// tolerance that keeps the broken head in F32 it accepts, writes the plan, and a predictor with
// weights "auto" runs exactly that plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "data/temp_dir.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/infer/quantize.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {
using testing::expect_error;

struct Setup {
  testing::TempDir dir;
  std::string model;
  ImageDataset ds;
  std::vector<int64_t> calib, val;
};

std::unique_ptr<Setup> make_setup() {
  auto s = std::make_unique<Setup>();
  s->model = s->dir.file("m.safetensors");
  auto cnn = testing::tiny_cnn(9);
  StateDict sd = cnn->state_dict();
  Tensor w = sd.at("head.weight"), b = sd.at("head.bias");  // (10, 8), (10)
  Rng rng(12);
  rng.fill_normal(w.data<float>(), w.numel(), 0.f, 1.f);
  // The outlier: weight 1000 on feature 0 in every row, and feature 0 dead (its channel's batch
  // norm shift sends it below zero before the ReLU), so it sets the int8 scale and nothing else.
  for (int64_t o = 0; o < 10; ++o) w.data<float>()[o * 8] = 1000.f;
  sd.at("stages.1.bn2.bias").data<float>()[0] = -1e4f;
  std::fill(b.data<float>(), b.data<float>() + 10, 0.f);
  save_model(s->model, *cnn, testing::tiny_image_info());
  const int64_t n = 80;
  std::vector<uint8_t> px(static_cast<size_t>(n * 28 * 28));
  // Varied structure (stripes of both orientations at several periods, checkerboards, noise), so
  // that the untrained network's pooled features, hence its predictions, differ between images.
  for (int64_t i = 0; i < n; ++i) {
    const int64_t kind = i % 4, period = 2 + rng.randint(6), phase = rng.randint(8);
    for (int64_t y = 0; y < 28; ++y)
      for (int64_t x = 0; x < 28; ++x) {
        const int64_t v = kind == 0 ? (y + phase) / period % 2
                          : kind == 1 ? (x + phase) / period % 2
                          : kind == 2 ? ((x + phase) / period + y / period) % 2
                                      : rng.randint(2);
        px[size_t((i * 28 + y) * 28 + x)] = uint8_t(v ? 55 + rng.randint(200) : rng.randint(40));
      }
  }
  std::vector<int64_t> labels(static_cast<size_t>(n), 0);
  ImageDataset unlabelled(px, labels, 1, 28, 28, testing::tiny_image_info().class_names);
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
  const ImagePredictor f32(s->model);
  const std::vector<double> z = dataset_logits(f32, unlabelled, all);
  for (int64_t i = 0; i < n; ++i)
    labels[size_t(i)] = std::max_element(z.begin() + i * 10, z.begin() + (i + 1) * 10) - (z.begin() + i * 10);
  s->ds = ImageDataset(px, labels, 1, 28, 28, testing::tiny_image_info().class_names);
  for (int64_t i = 0; i < n; ++i) (i < 20 ? s->calib : s->val).push_back(i);
  return s;
}

TEST(Quantize, GuardrailRefusesAModelThatLosesAccuracy) {
  const auto s = make_setup();
  const std::string out = s->dir.file("q.safetensors");
  QuantizeOptions opt;
  opt.layer_tol = 1e9;  // every layer int8, the head included
  opt.max_drop = 5;
  const QuantizeResult r = quantize_model_file(s->model, out, s->ds, s->calib, s->val, opt);
  EXPECT_DOUBLE_EQ(r.acc_f32, 1.0);  // labels are its own predictions
  for (int64_t i : s->val) ASSERT_NE(s->ds.label(i), 0);
  EXPECT_GT(r.drop_points(), 30.0);
  EXPECT_FALSE(r.accepted);
  EXPECT_FALSE(std::filesystem::exists(out));
  const std::string table = format_quantize_report(r, opt);
  EXPECT_NE(table.find("REFUSED"), std::string::npos);
  EXPECT_NE(table.find("head"), std::string::npos);
  // The head's int8 output is far off (its small weights round to zero).
  const auto head = std::find_if(r.layers.begin(), r.layers.end(), [](auto& e) { return e.name == "head"; });
  ASSERT_NE(head, r.layers.end());
  EXPECT_GT(head->rel_l2, 0.2);
  EXPECT_EQ(r.layers.size(), quantizable_layers(*testing::tiny_cnn()).size());
}

TEST(Quantize, GuardrailAcceptsAPlanThatKeepsTheBadLayerInF32) {
  const auto s = make_setup();
  const std::string out = s->dir.file("q.safetensors");
  QuantizeOptions opt;
  opt.layer_tol = 0.1;
  opt.max_drop = 10;
  const QuantizeResult r = quantize_model_file(s->model, out, s->ds, s->calib, s->val, opt);
  ASSERT_TRUE(r.accepted) << format_quantize_report(r, opt);
  EXPECT_LE(r.drop_points(), 10.0);
  ASSERT_TRUE(std::filesystem::exists(out));
  const LoadedModel q = load_model(out);
  ASSERT_TRUE(q.info.quantized);
  EXPECT_NE(std::find(q.info.f32_layers.begin(), q.info.f32_layers.end(), "head"), q.info.f32_layers.end());
  EXPECT_FALSE(q.info.int8_layers.empty());  // the convolutions stay int8
  for (const auto& e : r.layers)
    EXPECT_EQ(e.int8, std::find(q.info.int8_layers.begin(), q.info.int8_layers.end(), e.name) !=
                          q.info.int8_layers.end()) << e.name;
  // "auto" runs the plan; "f32" ignores it; both from the same file.
  const ImagePredictor a(out, {.weights = "auto"}), f(out, {.weights = "f32"}), o(s->model);
  EXPECT_EQ(a.weights(), "int8");
  EXPECT_EQ(f.weights(), "f32");
  EXPECT_EQ(o.weights(), "f32");
  std::vector<int64_t> idx(s->val.begin(), s->val.end());
  EXPECT_EQ(dataset_logits(f, s->ds, idx), dataset_logits(o, s->ds, idx));  // same F32 tensors
  EXPECT_NE(dataset_logits(a, s->ds, idx), dataset_logits(f, s->ds, idx));
}

TEST(Quantize, BadInputsAreRefused) {
  const auto s = make_setup();
  QuantizeOptions opt;
  expect_error<ValueError>([&] { quantize_model_file(s->model, s->dir.file("x"), s->ds, {}, s->val, opt); },
                           {"calibration"});
  opt.max_drop = -1;
  expect_error<ValueError>([&] { quantize_model_file(s->model, s->dir.file("x"), s->ds, s->calib, s->val, opt); },
                           {"--max-drop"});
  auto cnn = testing::tiny_cnn();
  expect_error<FormatError>([&] { set_int8_layers(*cnn, {"stages.0.bn1"}, "f.safetensors"); },
                            {"f.safetensors", "stages.0.bn1"});
  expect_error<ValueError>([&] { const ImagePredictor p(s->model, {.weights = "int4"}); }, {"int4"});
}

}  // namespace
}  // namespace focus
