// ImagePlan (infer/image_plan.hpp): the compiled cnn_se against the model's own forward in eval
// mode (the reference built from the layers: conv, batch norm with non-trivial running
// statistics, ReLU, SE, max-pool), at batches that split into several power-of-two chunks, odd
// planes (pooling floors), three input channels (the input reordered); its input checks; the
// engine switch; models and ISAs without a plan; the predictor running it; bf16; int8 (whole,
// partial with F32 convolutions between int8 ones) within quantisation error of the F32 model.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "focus/autograd/node.hpp"
#include "focus/infer/image_plan.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/quantize.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/cnn_se.hpp"
#include "focus/models/vit.hpp"
#include "focus/tensor/rng.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {

using testing::expect_error;

// A cnn_se whose batch norms have running statistics and affine parameters away from 0 / 1, so
// that folding them into the convolutions is exercised.
std::unique_ptr<CnnSe> model_with_stats(int64_t in_channels, uint64_t seed,
                                        std::vector<int64_t> channels = {8, 16, 32}) {
  CnnSeConfig c;
  c.in_channels = in_channels;
  c.channels = std::move(channels);
  c.se_reduction = 4;
  Rng rng(seed);
  auto m = std::make_unique<CnnSe>(c, rng);
  for (auto& [name, t] : m->named_buffers()) {
    if (t.dtype() != DType::F32) continue;
    float* p = t.data<float>();
    const bool var = name.find("running_var") != std::string::npos;
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(var ? 0.5 + rng.uniform() : 0.3 * rng.normal());
  }
  for (auto& [name, t] : m->named_parameters()) {
    if (name.find(".bn") == std::string::npos) continue;
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] += float(0.3 * rng.normal());
  }
  m->eval();
  return m;
}

Tensor images(int64_t n, int64_t c, int64_t s, uint64_t seed) {
  Rng rng(seed);
  return Tensor::randn({n, c, s, s}, rng);  // (N, C, S, S)
}

// max |plan - model| over the logits, relative to the largest logit (at least 1).
double plan_error(ImagePlan& plan, CnnSe& m, const Tensor& x) {
  NoGradGuard no_grad;
  const std::vector<float> a = plan.forward(x).to_vector<float>(), b = m.forward(x).to_vector<float>();
  EXPECT_EQ(a.size(), b.size());
  double scale = 1, err = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    scale = std::max(scale, double(std::abs(b[i])));
    err = std::max(err, double(std::abs(a[i] - b[i])));
  }
  return err / scale;
}

bool onednn_expected() { return active_isa() != Isa::Scalar && image_engine() == ImageEngine::OneDnn; }

TEST(ImagePlan, MatchesTheModelsForward) {
  auto m = model_with_stats(1, 11);
  const auto plan = compile_image_plan(*m);
  if (!onednn_expected()) {
    EXPECT_EQ(plan, nullptr) << "no plan under FOCUS_FORCE_ISA=scalar or FOCUS_INFER_ENGINE=native";
    return;
  }
  ASSERT_NE(plan, nullptr);
  EXPECT_NE(plan->describe().find("onednn cnn_se"), std::string::npos) << plan->describe();
  // 1, 3 = 2 + 1, 7 = 4 + 2 + 1: every chunk size up to 4, each list built once and reused.
  for (int64_t n : {1, 3, 7, 1}) EXPECT_LT(plan_error(*plan, *m, images(n, 1, 28, 100 + n)), 1e-5) << n;
  // Odd planes: 30 -> 15 -> 7 -> 3 (pooling floors), a second geometry beside the first.
  EXPECT_LT(plan_error(*plan, *m, images(3, 1, 30, 7)), 1e-5);
  // Every primitive built has a jit kernel (under AVX2, oneDNN's one-input-channel convolution
  // into NHWC had none: a reference loop 15x slower than the whole rest of the net).
  EXPECT_EQ(plan->describe().find("reference"), std::string::npos) << plan->describe();
}

// Both layouts (PlanLayout) against the model: channel counts on and off the 16-channel block
// (Winograd on some layers and direct on others where the ISA has Winograd, so the blocked plan
// moves between nChw16c and NHWC), chunks of 1 to 4 images (host SE layers and head) and of 8
// (oneDNN's inner products), odd planes; describe() names the layout.
TEST(ImagePlan, BothLayoutsMatchTheModel) {
  const PlanLayout was = plan_layout();
  const std::vector<std::vector<int64_t>> nets = {{8, 16, 32}, {16, 24, 40}, {16, 32, 64}};
  for (const PlanLayout layout : {PlanLayout::Blocked, PlanLayout::Nhwc}) {
    set_plan_layout(layout);
    for (size_t i = 0; i < nets.size(); ++i) {
      auto m = model_with_stats(1, 40 + i, nets[i]);
      const auto plan = compile_image_plan(*m);
      if (!onednn_expected()) {
        EXPECT_EQ(plan, nullptr);
        continue;
      }
      ASSERT_NE(plan, nullptr);
      const std::string name = layout == PlanLayout::Blocked ? "layout blocked" : "layout nhwc";
      EXPECT_NE(plan->describe().find(name), std::string::npos) << plan->describe();
      for (int64_t n : {1, 3, 9}) EXPECT_LT(plan_error(*plan, *m, images(n, 1, 28, 50 + n)), 1e-5) << n << " " << i;
      EXPECT_LT(plan_error(*plan, *m, images(2, 1, 30, 8)), 1e-5) << i;  // 30 -> 15 -> 7 -> 3
      EXPECT_EQ(plan->describe().find("reference"), std::string::npos) << plan->describe();
    }
  }
  set_plan_layout(was);
}

TEST(ImagePlan, ThreeInputChannelsAndLargeBatch) {
  auto m = model_with_stats(3, 12);
  const auto plan = compile_image_plan(*m);
  if (!onednn_expected()) {
    EXPECT_EQ(plan, nullptr);
    return;
  }
  ASSERT_NE(plan, nullptr);
  EXPECT_LT(plan_error(*plan, *m, images(2, 3, 28, 5)), 1e-5);
  EXPECT_LT(plan_error(*plan, *m, images(300, 3, 16, 6)), 1e-5);  // 256 + 32 + 8 + 4
  EXPECT_EQ(plan->describe().find("reference"), std::string::npos) << plan->describe();
}

TEST(ImagePlan, CopiesTheWeightsWhenCompiled) {
  auto m = model_with_stats(1, 13);
  const auto plan = compile_image_plan(*m);
  if (!plan) {
    EXPECT_FALSE(onednn_expected());
    return;
  }
  const Tensor x = images(2, 1, 28, 9);
  const std::vector<float> before = plan->forward(x).to_vector<float>();
  for (auto& [name, t] : m->named_parameters()) t.data<float>()[0] += 1.f;  // after compiling
  EXPECT_EQ(plan->forward(x).to_vector<float>(), before);
}

std::unique_ptr<CnnSe> model_fitted_to(const Tensor& x, uint64_t seed);  // below

// Four threads calling one plan (made in this thread): every answer equals this thread's.
void expect_concurrent_calls_agree(ImagePlan& plan) {
  std::vector<Tensor> xs;
  std::vector<std::vector<float>> want;
  for (int t = 0; t < 4; ++t) {
    xs.push_back(images(1 + t, 1, 28, 60 + uint64_t(t)));  // chunk lists of several sizes
    want.push_back(plan.forward(xs.back()).to_vector<float>());
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i)
        if (plan.forward(xs[size_t(t)]).to_vector<float>() != want[size_t(t)]) ++wrong;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(wrong.load(), 0) << plan.describe();
}

// Made in one thread and run in others: every primitive of the plan takes the plan's scratchpad
// (oneDNN's own is thread-local; a Winograd convolution crashed without it), in F32, int8 and
// bf16 where the CPU has it.
TEST(ImagePlan, ConcurrentCallsRunOneAtATime) {
  auto m = model_with_stats(1, 19);
  const auto plan = compile_image_plan(*m);
  if (!plan) {
    EXPECT_FALSE(onednn_expected());
    return;
  }
  expect_concurrent_calls_agree(*plan);
  auto q = model_fitted_to(images(64, 1, 28, 70), 31);
  const auto int8 = compile_image_plan(*q, DType::I8, quantizable_layers(*q));
  ASSERT_NE(int8, nullptr);
  expect_concurrent_calls_agree(*int8);
  if (bf16_plan_supported()) expect_concurrent_calls_agree(*compile_image_plan(*m, DType::BF16));
}

TEST(ImagePlan, InputErrors) {
  auto m = model_with_stats(1, 14);
  const auto plan = compile_image_plan(*m);
  if (!plan) {
    EXPECT_FALSE(onednn_expected());
    return;
  }
  expect_error<ShapeError>([&] { plan->forward(Tensor::zeros({2, 3, 28, 28})); }, {"(2, 3, 28, 28)", "(N, 1, H, W)"});
  expect_error<ShapeError>([&] { plan->forward(Tensor::zeros({1, 1, 4, 4})); }, {"H, W >= 8"});
  expect_error<ShapeError>([&] { plan->forward(Tensor::zeros({28, 28})); }, {"(28, 28)"});
  expect_error<DTypeError>([&] { plan->forward(Tensor::zeros({1, 1, 28, 28}).to(DType::F64)); }, {"F64"});
}

TEST(ImagePlan, NoPlanForOtherModelsOrWithTheEngineOff) {
  VitConfig vc;
  Rng rng(1);
  Vit vit(vc, rng);
  EXPECT_EQ(compile_image_plan(vit) != nullptr, image_engine() == ImageEngine::OneDnn);  // vit_plan
  EXPECT_TRUE(measure_activation_ranges(vit, Tensor::zeros({1, 1, 28, 28})).empty());
  auto m = model_with_stats(1, 15);
  m->to(DType::F64);
  EXPECT_EQ(compile_image_plan(*m), nullptr);  // F64 weights: the model's own forward
  const ImageEngine was = image_engine();
  set_image_engine(ImageEngine::Native);
  EXPECT_EQ(compile_image_plan(*model_with_stats(1, 16)), nullptr);
  EXPECT_EQ(compile_image_plan(vit), nullptr);
  set_image_engine(was);
}

// bfloat16 convolutions: within bf16 rounding of the F32 model (8 significant bits through six
// convolutions: a few 1e-3 relative; a wrong layer is off by 1e-1 or more); refused with the
// reason on a CPU (or a forced ISA) without AVX512-BF16.
TEST(ImagePlan, Bf16WithinRoundingOrRefused) {
  auto m = model_with_stats(1, 18);
  if (!bf16_plan_supported()) {
    expect_error<ValueError>([&] { compile_image_plan(*m, DType::BF16); }, {"AVX512-BF16"});
    ImagePredictorOptions o;
    o.weights = "bf16";
    expect_error<ValueError>([&] { ImagePredictor(LoadedModel{model_with_stats(1, 18), testing::tiny_image_info()}, o); },
                             {"AVX512-BF16"});
    return;
  }
  const auto plan = compile_image_plan(*m, DType::BF16);
  ASSERT_NE(plan, nullptr);
  EXPECT_NE(plan->describe().find("bf16"), std::string::npos) << plan->describe();
  for (int64_t n : {1, 5}) {
    const double err = plan_error(*plan, *m, images(n, 1, 28, 40 + n));
    EXPECT_LT(err, 3e-2) << n;
    EXPECT_GT(err, 0.0) << "bf16 rounding must show: is the plan really bf16?";
  }
  expect_error<DTypeError>([&] { compile_image_plan(*m, DType::F64); }, {"F64"});
}

TEST(ImagePlan, PredictorRunsThePlanAndAgreesWithTheLayers) {
  const auto make = [](bool compiled) {
    return ImagePredictor(LoadedModel{model_with_stats(1, 17), testing::tiny_image_info()},
                          {.compiled = compiled});
  };
  const ImagePredictor fast = make(true), layers = make(false);
  EXPECT_EQ(layers.engine(), "native");
  EXPECT_EQ(fast.engine() != "native", onednn_expected()) << fast.engine();
  const Tensor x = images(5, 1, 28, 21);
  Tensor pixels = x;
  float* p = pixels.data<float>();
  for (int64_t i = 0; i < pixels.numel(); ++i) p[i] = 1.f / (1.f + std::exp(-p[i]));  // [0, 1]
  const std::vector<float> a = fast.probabilities(pixels).to_vector<float>(),
                           b = layers.probabilities(pixels).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
}

// A cnn_se whose batch-norm statistics are those of `x` (momentum 1: one training-mode forward),
// as after training on data like x, with affine parameters away from 1 / 0: the int8 plan takes
// its activation ranges from these statistics.
std::unique_ptr<CnnSe> model_fitted_to(const Tensor& x, uint64_t seed) {
  CnnSeConfig c;
  c.channels = {8, 16, 32};
  c.se_reduction = 4;
  c.bn_momentum = 1.0;
  Rng rng(seed);
  auto m = std::make_unique<CnnSe>(c, rng);
  for (auto& [name, t] : m->named_parameters()) {
    if (name.find(".bn") == std::string::npos) continue;
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] += float(0.3 * rng.normal());
  }
  m->train();
  {
    NoGradGuard no_grad;
    m->forward(x);
  }
  m->eval();
  return m;
}

// int8: u8 activations with a step of (mean + 6 sd) / 255 and 8-bit (7-bit without VNNI) weights
// through five convolutions: about 1e-2 of the largest logit here; a wrong scale or bias is off
// by far more, and an error of 0 would mean nothing was quantised.
TEST(ImagePlan, Int8WithinQuantisationErrorOfTheModel) {
  auto m = model_fitted_to(images(64, 1, 28, 70), 31);
  const auto plan = compile_image_plan(*m, DType::I8, quantizable_layers(*m));
  if (!onednn_expected()) {
    EXPECT_EQ(plan, nullptr) << "no plan: the caller runs its int8 layers";
    return;
  }
  ASSERT_NE(plan, nullptr);
  EXPECT_NE(plan->describe().find("int8 (5 of 6 convolutions)"), std::string::npos) << plan->describe();
  for (int64_t n : {1, 6, 40}) {
    const double err = plan_error(*plan, *m, images(n, 1, 28, 80 + n));
    EXPECT_LT(err, 4e-2) << n;
    EXPECT_GT(err, 1e-5) << n;
  }
  // Inputs far outside the statistics' range saturate the u8 activations: finite, not garbage.
  Tensor big = images(3, 1, 28, 90);
  float* p = big.data<float>();
  for (int64_t i = 0; i < big.numel(); ++i) p[i] *= 50.f;
  for (float v : plan->forward(big).to_vector<float>()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(plan->describe().find("reference"), std::string::npos) << plan->describe();
}

// Some convolutions int8, others F32 between them: the activations are quantised and dequantised
// at each change; no layer named: the F32 plan.
TEST(ImagePlan, Int8PartialPlans) {
  auto m = model_fitted_to(images(64, 1, 28, 71), 32);
  const auto partial = compile_image_plan(*m, DType::I8, {"stages.1.conv1", "stages.2.conv1", "head"});
  const auto none = compile_image_plan(*m, DType::I8, {});
  if (!onednn_expected()) {
    EXPECT_EQ(partial, nullptr);
    return;
  }
  ASSERT_NE(partial, nullptr);
  EXPECT_NE(partial->describe().find("int8 (2 of 6 convolutions)"), std::string::npos) << partial->describe();
  const double err = plan_error(*partial, *m, images(7, 1, 28, 72));
  EXPECT_LT(err, 3e-2);
  EXPECT_GT(err, 1e-5);
  ASSERT_NE(none, nullptr);
  EXPECT_NE(none->describe().find("f32"), std::string::npos) << none->describe();
  EXPECT_LT(plan_error(*none, *m, images(3, 1, 28, 73)), 1e-5);
}

TEST(ImagePlan, PredictorRunsTheInt8PlanOrItsLayers) {
  const auto make = [](bool compiled) {
    return ImagePredictor(LoadedModel{model_fitted_to(images(64, 1, 28, 74), 33), testing::tiny_image_info()},
                          {.weights = "int8", .compiled = compiled});
  };
  const ImagePredictor fast = make(true), layers = make(false);
  EXPECT_EQ(layers.engine(), "native");
  EXPECT_EQ(fast.engine().find("int8") != std::string::npos, onednn_expected()) << fast.engine();
  EXPECT_EQ(fast.weights(), "int8");
  Tensor pixels = images(8, 1, 28, 75);
  float* p = pixels.data<float>();
  for (int64_t i = 0; i < pixels.numel(); ++i) p[i] = 1.f / (1.f + std::exp(-p[i]));  // [0, 1]
  const std::vector<float> a = fast.probabilities(pixels).to_vector<float>(),
                           b = layers.probabilities(pixels).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 0.05) << i;
}

// The predictor's warm-up builds the list of every chunk size a batch of up to max_batch splits
// into, so later calls build nothing.
TEST(ImagePlan, WarmUpPreparesEveryChunkSize) {
  ImagePredictorOptions o;
  o.max_batch = 12;
  const ImagePredictor p(LoadedModel{model_with_stats(1, 41), testing::tiny_image_info()}, o);
  EXPECT_EQ(p.warm_up(), (std::vector<int64_t>{1, 2, 4, 8, 12}));
  if (!p.plan()) {
    EXPECT_FALSE(onednn_expected());
    return;
  }
  std::vector<int64_t> chunks;
  for (const auto& [n, threads] : p.plan()->prepared()) chunks.push_back(n);
  EXPECT_EQ(chunks, (std::vector<int64_t>{1, 2, 4, 8}));
  const auto before = p.plan()->prepared();
  Tensor x = images(11, 1, 28, 42);  // 8 + 2 + 1
  float* v = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) v[i] = 1.f / (1.f + std::exp(-v[i]));
  p.logits(x);
  EXPECT_EQ(p.plan()->prepared(), before);
}

// A large chunk runs on the thread policy's count (kernels/cpu.hpp), also from a thread other
// than the one that set it (the server's batcher): OpenMP's own count is per thread.
TEST(ImagePlan, LargeChunksFollowTheThreadPolicyOnEveryThread) {
  auto m = model_with_stats(1, 43);
  const auto plan = compile_image_plan(*m);
  if (!plan) {
    EXPECT_FALSE(onednn_expected());
    return;
  }
  const int was = num_threads();
  set_num_threads(1);
  std::thread([&] { plan->forward(images(64, 1, 28, 44)); }).join();  // 64 x 3.7 MFLOP: large
  set_num_threads(was);
  const auto built = plan->prepared();
  ASSERT_EQ(built.size(), 1u);
  EXPECT_EQ(built[0], (std::pair<int64_t, int>{64, 1}));
}

}  // namespace
}  // namespace focus
