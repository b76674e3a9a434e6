// Golden test of Grad-CAM against PyTorch 1.13 (fixture `gradcam`, tools/make_fixtures.py): a
// tiny cnn_se (1 -> 4 -> 8 channels, SE reduction 2, 3 classes) built by make_image_model, in
// eval mode with torch's weights and non-trivial batch-norm running statistics, on one 16x16
// image. Checked for the predicted class and the runner-up (an explicit target):
//   forward_traced + retain_grad  logits, SE gates per stage, the feature map (the last stage's
//                                 SE output before its max-pool) and d logit[target] / d features
//   grad_cam                      on focus's own features and gradient vs torch's unnormalised cam
//   explain_image (GradCam)       predicted class, target, probabilities, gates, relevance
// F64 and F32 twins. Tolerances (max |focus - torch| / max |torch|), observed worst in brackets:
//   F64  1e-10 for what the model computes [logits 1.7e-16, probs 1.3e-16; gates, features and
//        their gradient bit-identical]; 1e-6 for the cam and relevance, which are F32 whatever the
//        model's dtype (grad_cam works in double, then rounds) [cam 3.2e-8, relevance 4.9e-8]
//   F32  1e-5 for all [features 1.3e-7, probs 9.4e-8, cam 6.3e-7, relevance 6.3e-7]: tighter than
//        golden.hpp's 1e-4, as this model is small; torch's own F32 cam lies 4.3e-7 from its F64.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

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

double tol(const Fixture& fx) { return fx.dtype() == DType::F64 ? 1e-10 : 1e-5; }
// The cam and relevance are F32: in the F64 case they differ from torch's F64 by F32 rounding,
// 2^-24 ~ 6e-8 relative to the largest cell (the relevance adds a float division).
double cam_tol(const Fixture& fx) { return fx.dtype() == DType::F64 ? 1e-6 : tol(fx); }

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
  std::vector<int64_t> channels;  // metadata "4,8": one entry per stage
  std::stringstream list(fx.meta("channels"));
  for (std::string c; std::getline(list, c, ',');) channels.push_back(std::stoll(c));
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
    ASSERT_EQ(logits.dtype(), fx.dtype());
    EXPECT_TRUE(close(fx, "logits", logits.detach(), tol(fx)));
    ASSERT_EQ(trace.channel_gates.size(), 2u);
    for (size_t s = 0; s < trace.channel_gates.size(); ++s)
      EXPECT_TRUE(close(fx, "gates." + std::to_string(s), trace.channel_gates[s], tol(fx)));
    EXPECT_TRUE(close(fx, "features", trace.features.detach(), tol(fx)));
    EXPECT_TRUE(close(fx, "dfeatures." + K, trace.features.grad(), tol(fx)));
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
                      tol(fx)));
    ASSERT_EQ(e.gates.size(), 2u);
    for (size_t s = 0; s < e.gates.size(); ++s)
      EXPECT_TRUE(close(fx, "gates." + std::to_string(s), unsqueeze(e.gates[s], 0), tol(fx)));
    EXPECT_TRUE(close(fx, "relevance." + K, e.relevance, cam_tol(fx)));
  }
}

}  // namespace

TEST(GoldenGradCam, F64) { check_gradcam("gradcam_f64"); }
TEST(GoldenGradCam, F32) { check_gradcam("gradcam_f32"); }
