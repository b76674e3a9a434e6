// Golden test of Grad-CAM against PyTorch 1.13 (fixture `gradcam`, tools/make_fixtures.py): a
// tiny cnn_se (1 -> 4 -> 8 channels, SE reduction 2, 3 classes) built by make_image_model, in
// eval mode with torch's weights and non-trivial batch-norm running statistics, on one 16x16
// image. Checked for the predicted class and the runner-up (an explicit target):
//   forward_traced + retain_grad  logits, SE gates per stage, the feature map (the last stage's
//                                 SE output before its max-pool) and d logit[target] / d features
//   grad_cam                      on focus's own features and gradient vs torch's unnormalised cam
//   explain_image (GradCam)       predicted class, target, probabilities, gates, relevance
// F64 and F32 twins. grad_cam and the relevance are F32 whatever the model's dtype (image_explain
// computes the cam in double, then rounds), so in the F64 case they are held to F32 rounding
// (kCamTolF64) while everything the model computes is held to golden::tolerance (1e-10 / 1e-4).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "focus/autograd/retain.hpp"
#include "focus/explain/image_explain.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "golden/golden.hpp"

using namespace focus;
using golden::Fixture;

namespace {

// F64 case: the cam (computed in double, stored as F32) may differ from torch's F64 cam by F32
// rounding, 2^-24 ~ 6e-8 relative to its largest cell; the relevance adds a float division.
constexpr double kCamTolF64 = 1e-6;

double cam_tol(const Fixture& fx) { return fx.dtype() == DType::F64 ? kCamTolF64 : fx.tol(); }

// Same shape and max |got - ref| / max |ref| <= tol; compares across dtypes (F32 cam vs F64).
::testing::AssertionResult close(const Fixture& fx, const std::string& name, const Tensor& got,
                                 double tol) {
  const Tensor ref = fx.at(name);
  if (got.shape() != ref.shape())
    return ::testing::AssertionFailure() << fx.stem() << " " << name << ": got "
                                         << describe(got) << ", torch " << describe(ref);
  const golden::Diff d = golden::diff(got, ref);
  if (d.err <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << fx.stem() << " " << name << ": max error " << d.err
                                       << " (relative to max |torch| " << d.scale
                                       << ") > tolerance " << tol;
}

std::unique_ptr<ImageClassifier> load_model(const Fixture& fx) {
  std::vector<int64_t> channels;
  for (const char c : fx.meta("channels"))
    if (c != ',') channels.push_back(c - '0');  // single-digit stages ("4,8")
  const nlohmann::json cfg = {{"in_channels", fx.meta_int("in_channels")},
                              {"num_classes", fx.meta_int("num_classes")},
                              {"channels", channels},
                              {"se_reduction", fx.meta_int("se_reduction")},
                              {"dropout", fx.meta_double("dropout")},
                              {"bn_momentum", fx.meta_double("bn_momentum")}};
  Rng rng(5);
  auto model = make_image_model("cnn_se", cfg, rng);
  model->to(fx.dtype());
  fx.load_into(*model);  // strict: every parameter and running statistic comes from torch
  model->eval();
  return model;
}

void check_gradcam(const std::string& stem) {
  const Fixture fx(stem);
  ASSERT_EQ(fx.meta("mode"), "eval");
  const auto model = load_model(fx);
  const Tensor x = fx.at("input");  // (1, C_in, S, S)
  const auto targets = fx.at("targets").to_vector<int64_t>();  // predicted, runner-up
  ASSERT_EQ(targets.size(), 2u);

  for (size_t k = 0; k < targets.size(); ++k) {
    SCOPED_TRACE("target " + std::to_string(targets[k]) + " (k = " + std::to_string(k) + ")");
    const std::string K = std::to_string(k);

    // The pipeline step by step: traced forward, retained feature gradient, grad_cam.
    ForwardTrace trace;
    Tensor xin = x.clone().requires_grad_(true);
    const Tensor logits = model->forward_traced(xin, trace);  // (1, classes)
    retain_grad(trace.features);                              // (1, C, h, w)
    Tensor seed = Tensor::zeros(logits.shape(), DType::F64);  // (1, classes)
    seed.data<double>()[targets[k]] = 1.0;
    logits.backward(seed.to(logits.dtype()));
    model->zero_grad();
    EXPECT_TRUE(golden::matches(fx, "logits", logits.detach()));
    ASSERT_EQ(trace.channel_gates.size(), 2u);
    for (size_t s = 0; s < trace.channel_gates.size(); ++s)
      EXPECT_TRUE(golden::matches(fx, "gates." + std::to_string(s), trace.channel_gates[s]));
    EXPECT_TRUE(golden::matches(fx, "features", trace.features.detach()));
    EXPECT_TRUE(golden::matches(fx, "dfeatures." + K, trace.features.grad()));
    const Tensor cam = grad_cam(select(trace.features.detach(), 0, 0),
                                select(trace.features.grad(), 0, 0));  // (h, w)
    EXPECT_TRUE(close(fx, "cam." + K, cam, cam_tol(fx)));

    // The public entry point, with the target explicit (k = 1) or defaulted (k = 0).
    ImageExplainOptions opt;
    opt.method = ImageMethod::GradCam;
    opt.target = k == 0 ? -1 : targets[k];
    const ImageExplanation e = explain_image(*model, x, opt);
    EXPECT_EQ(e.predicted, targets[0]);
    EXPECT_EQ(e.target, targets[k]);
    EXPECT_TRUE(close(fx, "probs", Tensor::from_vector(e.probs, {1, int64_t(e.probs.size())}),
                      fx.tol()));
    ASSERT_EQ(e.gates.size(), 2u);
    for (size_t s = 0; s < e.gates.size(); ++s)
      EXPECT_TRUE(close(fx, "gates." + std::to_string(s), unsqueeze(e.gates[s], 0), fx.tol()));
    EXPECT_TRUE(close(fx, "relevance." + K, e.relevance, cam_tol(fx)));
  }
}

}  // namespace

TEST(GoldenGradCam, F64) { check_gradcam("gradcam_f64"); }
TEST(GoldenGradCam, F32) { check_gradcam("gradcam_f32"); }
