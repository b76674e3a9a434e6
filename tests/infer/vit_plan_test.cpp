// The compiled vit (infer/vit_plan.hpp): its logits against the model's own eval-mode forward in
// F32 (float rounding) and with the same int8 layers (quantisation of the same rows: within a
// small fraction of the logits, and within a few percent of F32 without equalling it), for both
// stems; the models and layer lists it declines (null: the layers run); the predictor running it
// for f32 and int8 and its layers with compiled = false; the input checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "focus/autograd/node.hpp"
#include "focus/infer/image_plan.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/quantize.hpp"
#include "focus/infer/vit_plan.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/vit.hpp"
#include "focus/tensor/rng.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {

using testing::expect_error;

VitConfig small_config(const std::string& stem) {
  VitConfig c;
  c.dim = 32, c.depth = 3, c.heads = 4, c.stem = stem, c.dropout = 0.0;
  return c;
}

// A vit with its batch-norm statistics and LayerNorm affines off their defaults (so a wrong fold
// or a skipped norm shows), in eval mode.
std::unique_ptr<Vit> small_vit(const std::string& stem, uint64_t seed,
                               const std::vector<int64_t>& layer_heads = {}, int64_t kv_heads = 0) {
  Rng rng(seed);
  VitConfig c = small_config(stem);
  c.layer_heads = layer_heads;
  c.kv_heads = kv_heads;
  auto m = std::make_unique<Vit>(c, rng);
  NoGradGuard no_grad;
  for (auto& [name, t] : m->state_dict()) {
    float* v = t.data<float>();
    const bool var = name.find("running_var") != std::string::npos;
    const bool norm = name.find("norm") != std::string::npos || name.find(".bn.") != std::string::npos;
    if (var || name.find("running_mean") != std::string::npos || norm || name == "cls_token")
      for (int64_t i = 0; i < t.numel(); ++i)
        v[i] = var ? 0.5f + float(rng.uniform()) : (norm && name.find("weight") != std::string::npos
                                                         ? 0.7f + 0.6f * float(rng.uniform())
                                                         : 0.2f * float(rng.normal()));
  }
  m->eval();
  return m;
}

Tensor inputs(int64_t n, uint64_t seed) {
  Rng rng(seed);
  return Tensor::randn({n, 1, 28, 28}, rng);
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.to_vector<float>()) m = std::max(m, double(std::abs(v)));
  return m;
}

double max_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, double(std::abs(x[i] - y[i])));
  return m;
}

Tensor reference(Vit& m, const Tensor& x) {
  NoGradGuard no_grad;
  return m.forward(x);
}

TEST(VitPlan, F32EqualsTheModelUpToRounding) {
  for (const std::string stem : {"conv", "patch"}) {
    auto m = small_vit(stem, 1);
    const auto plan = compile_vit_plan(*m, DType::F32);
    ASSERT_NE(plan, nullptr) << stem;
    EXPECT_EQ(plan->describe(), "vit plan f32");
    for (int64_t n : {1, 3, 17}) {
      const Tensor x = inputs(n, 2 + n), want = reference(*m, x), got = plan->forward(x);
      ASSERT_EQ(got.shape(), want.shape());
      EXPECT_LT(max_diff(got, want), 1e-4 * (1 + max_abs(want))) << stem << " n " << n;
    }
  }
}

TEST(VitPlan, Int8MatchesTheModelsInt8LayersAndStaysNearF32) {
  for (const std::string stem : {"conv", "patch"}) {
    auto m = small_vit(stem, 3);
    const Tensor x = inputs(9, 4), f32 = reference(*m, x);
    const std::vector<std::string> layers = quantizable_layers(*m);
    set_int8_layers(*m, layers, "test");
    const auto plan = compile_vit_plan(*m, DType::I8, layers);
    ASSERT_NE(plan, nullptr) << stem;
    EXPECT_NE(plan->describe().find("int8"), std::string::npos);
    const Tensor layered = reference(*m, x), got = plan->forward(x);
    // The same rows quantised the same way; a float-rounding difference upstream can move a value
    // across a rounding step, so not bit for bit.
    EXPECT_LT(max_diff(got, layered), 2e-3 * max_abs(f32)) << stem;
    const double err = max_diff(got, f32);
    EXPECT_GT(err, 0.0) << stem;
    EXPECT_LT(err, 0.05 * max_abs(f32)) << stem;
  }
}

// Pruned blocks (fewer heads, smaller Q/K/V/out matrices) and grouped K/V heads, F32 and int8.
TEST(VitPlan, PrunedAndGroupedHeads) {
  for (const auto& [heads, kv] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{
           {{4, 2, 4}, 0}, {{}, 2}, {{2, 4, 2}, 2}}) {
    auto m = small_vit("conv", 13, heads, kv);
    const Tensor x = inputs(5, 14), want = reference(*m, x);
    const auto f32 = compile_vit_plan(*m, DType::F32);
    ASSERT_NE(f32, nullptr);
    EXPECT_LT(max_diff(f32->forward(x), want), 1e-4 * (1 + max_abs(want))) << kv;
    const std::vector<std::string> layers = quantizable_layers(*m);
    set_int8_layers(*m, layers, "test");
    const auto i8 = compile_vit_plan(*m, DType::I8, layers);
    ASSERT_NE(i8, nullptr);
    EXPECT_LT(max_diff(i8->forward(x), reference(*m, x)), 2e-3 * max_abs(want)) << kv;
  }
}

// int8 runs chunks of images through the whole network, over the threads: the answer does not
// depend on the thread count or on which chunk an image falls in.
TEST(VitPlan, Int8ChunksGiveTheSameLogitsOnAnyThreadCount) {
  auto m = small_vit("conv", 11);
  const std::vector<std::string> layers = quantizable_layers(*m);
  const auto plan = compile_vit_plan(*m, DType::I8, layers);
  ASSERT_NE(plan, nullptr);
  const Tensor x = inputs(21, 12);  // chunks of 8, 8, 5
  Tensor one, two;
  {
    ScopedThreads t(1);
    one = plan->forward(x);
  }
  {
    ScopedThreads t(2);
    two = plan->forward(x);
  }
  EXPECT_EQ(one.to_vector<float>(), two.to_vector<float>());
  const std::vector<float> all = one.to_vector<float>();
  const std::vector<float> last = plan->forward(x.slice(0, 20, 21)).to_vector<float>();  // alone
  for (size_t k = 0; k < last.size(); ++k) EXPECT_EQ(last[k], all[20 * last.size() + k]);
}

TEST(VitPlan, DeclinesWhatItDoesNotRun) {
  auto m = small_vit("conv", 5);
  std::vector<std::string> layers = quantizable_layers(*m);
  layers.erase(std::find(layers.begin(), layers.end(), "blocks.1.linear2"));
  EXPECT_EQ(compile_vit_plan(*m, DType::I8, layers), nullptr);  // a layer kept in F32
  EXPECT_EQ(compile_vit_plan(*m, DType::BF16), nullptr);
  Rng rng(6);
  VitConfig c = small_config("conv");
  c.pool = "attn";
  EXPECT_EQ(compile_vit_plan(Vit(c, rng), DType::F32), nullptr);
  c = small_config("conv");
  c.exits = {0};
  c.exit_threshold = 0.9;  // early exit on
  EXPECT_EQ(compile_vit_plan(Vit(c, rng), DType::F32), nullptr);
  c.exit_threshold = 2.0;  // exits trained but off: the plain model
  EXPECT_NE(compile_vit_plan(Vit(c, rng), DType::F32), nullptr);
  m->to(DType::F64);
  EXPECT_EQ(compile_vit_plan(*m, DType::F32), nullptr);
  const ImageEngine was = image_engine();
  set_image_engine(ImageEngine::Native);
  EXPECT_EQ(compile_image_plan(*small_vit("conv", 7)), nullptr);
  set_image_engine(was);
}

TEST(VitPlan, PredictorRunsThePlanOrItsLayers) {
  for (const std::string weights : {"f32", "int8"}) {
    ImagePredictorOptions o;
    o.weights = weights;
    const ImagePredictor fast(LoadedModel{small_vit("conv", 8), testing::tiny_image_info()}, o);
    o.compiled = false;
    const ImagePredictor layers(LoadedModel{small_vit("conv", 8), testing::tiny_image_info()}, o);
    EXPECT_EQ(layers.engine(), "native");
    const bool on = image_engine() == ImageEngine::OneDnn;
    EXPECT_EQ(fast.engine().find("vit plan " + weights) == 0, on) << fast.engine();
    Rng rng(9);
    Tensor px = Tensor::rand({5, 1, 28, 28}, rng);
    const Tensor a = fast.logits(px), b = layers.logits(px);
    EXPECT_LT(max_diff(a, b), (weights == "f32" ? 1e-4 : 2e-3) * (1 + max_abs(b))) << weights;
  }
}

TEST(VitPlan, ChecksItsInput) {
  const auto plan = compile_vit_plan(*small_vit("conv", 10), DType::F32);
  ASSERT_NE(plan, nullptr);
  expect_error<ShapeError>([&] { plan->forward(Tensor::zeros({2, 3, 28, 28})); }, {"(2, 3, 28, 28)", "(N, 1, 28, 28)"});
  expect_error<ShapeError>([&] { plan->forward(Tensor::zeros({0, 1, 28, 28})); }, {"(0, 1, 28, 28)"});
  expect_error<DTypeError>([&] { plan->forward(Tensor::zeros({1, 1, 28, 28}).to(DType::F64)); }, {"F64"});
  EXPECT_TRUE(plan->prepared().empty());
  plan->forward(Tensor::zeros({4, 1, 28, 28}));
  ASSERT_EQ(plan->prepared().size(), 1u);
  EXPECT_EQ(plan->prepared()[0].first, 4);
}

}  // namespace
}  // namespace focus
