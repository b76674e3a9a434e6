// Image explanations: rollout, gradient rollout and Grad-CAM against hand-computed cases; the
// maps from the fused kernel equal the reference kernel's; bad requests throw typed errors; and
// faithfulness on small models trained here on a task whose evidence is known (a bar whose
// orientation is the class): deleting cells in explanation order removes the evidence faster
// than random order (mean over 24 images).
//   Letters: N batch, H heads, T tokens.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/explain/image_explain.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/ops/attention.hpp"
#include "focus/ops/loss.hpp"
#include "focus/optim/adam.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"

namespace focus {
namespace {

using nlohmann::json;
using testing::max_abs_diff;

Tensor mat(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }

TEST(Rollout, HandComputedTwoLayers) {
  // Head means A1 = [[.8 .2] [.4 .6]], A2 = [[.5 .5] [.1 .9]]; with residual 0.5:
  // A1' = [[.9 .1] [.2 .8]], A2' = [[.75 .25] [.05 .95]], R = A2' A1'.
  const Tensor a1 = mat({1.0, 0.0, 0.4, 0.6, 0.6, 0.4, 0.4, 0.6}, {2, 2, 2});
  const Tensor a2 = mat({0.5, 0.5, 0.1, 0.9}, {1, 2, 2});
  const Tensor r = attention_rollout({a1, a2}, 0.5);
  EXPECT_LT(max_abs_diff(r, mat({0.725, 0.275, 0.235, 0.765}, {2, 2}).to(DType::F32)), 1e-6);
  // residual 1: the identity; residual 0: the plain product of the head means.
  EXPECT_LT(max_abs_diff(attention_rollout({a1, a2}, 1.0), mat({1, 0, 0, 1}, {2, 2}).to(DType::F32)),
            1e-7);
  EXPECT_LT(max_abs_diff(attention_rollout({a1, a2}, 0.0),
                         mat({0.6, 0.4, 0.44, 0.56}, {2, 2}).to(DType::F32)),
            1e-6);
  EXPECT_THROW(attention_rollout({a1, mat({1, 0, 0}, {1, 1, 3})}), ShapeError);
}

TEST(GradientRollout, HandComputed) {
  // relu(A * dA) = [[1 0] [0 3]]; R = I + that.
  const Tensor a = mat({0.5, 0.5, 0.25, 0.75}, {1, 2, 2});
  const Tensor g = mat({2, -1, 0, 4}, {1, 2, 2});
  EXPECT_LT(max_abs_diff(gradient_rollout({a}, {g}), mat({2, 0, 0, 4}, {2, 2}).to(DType::F32)),
            1e-7);
  // Two layers: R2 = R1 + B R1 with B = relu(A * dA) of layer 2.
  const Tensor b = mat({1, 1, 0, 0}, {1, 2, 2}), gb = mat({0.5, 0.25, 1, 1}, {1, 2, 2});
  // B = [[.5 .25] [0 0]], R1 = [[2 0] [0 4]] -> B R1 = [[1 1] [0 0]] -> R2 = [[3 1] [0 4]]
  EXPECT_LT(max_abs_diff(gradient_rollout({a, b}, {g, gb}), mat({3, 1, 0, 4}, {2, 2}).to(DType::F32)),
            1e-7);
}

TEST(GradCam, HandComputed) {
  // alpha = (1, -0.5): cam = relu(F0 - 0.5 F1) = relu([1 - 1.5, 2 - 0]) = [0, 2].
  const Tensor f = mat({1, 2, 3, 0}, {2, 1, 2}), df = mat({1, 1, -1, 0}, {2, 1, 2});
  EXPECT_LT(max_abs_diff(grad_cam(f, df), mat({0, 2}, {1, 2}).to(DType::F32)), 1e-7);
  EXPECT_THROW(grad_cam(f, mat({1, 1}, {1, 1, 2})), ShapeError);
}

std::unique_ptr<ImageClassifier> tiny_vit(Rng& rng, const std::string& pool = "cls") {
  auto m = make_image_model(
      "vit", {{"num_classes", 2}, {"dim", 32}, {"depth", 2}, {"heads", 2}, {"dropout", 0.0}, {"pool", pool}}, rng);
  m->eval();
  return m;
}

TEST(ExplainImage, FusedMapsEqualReferenceKernel) {
  Rng rng(3);
  for (const char* pool : {"cls", "attn"}) {
    SCOPED_TRACE(pool);
    auto m = tiny_vit(rng, pool);
    const Tensor x = Tensor::randn({1, 1, 28, 28}, rng);
    for (ImageMethod method : {ImageMethod::Attention, ImageMethod::Rollout}) {
      ImageExplainOptions opt;
      opt.method = method;
      set_attention_kernel(AttentionKernel::Fused);
      const ImageExplanation fused = explain_image(*m, x, opt);
      set_attention_kernel(AttentionKernel::Reference);
      const ImageExplanation ref = explain_image(*m, x, opt);
      set_attention_kernel(AttentionKernel::Auto);
      ASSERT_EQ(fused.maps.size(), ref.maps.size());
      for (size_t l = 0; l < ref.maps.size(); ++l)
        EXPECT_LT(max_abs_diff(fused.maps[l], ref.maps[l]), 1e-5) << "layer " << l;
      EXPECT_LT(max_abs_diff(fused.relevance, ref.relevance), 1e-5);
      EXPECT_EQ(fused.relevance.shape(), Shape({7, 7}));
    }
  }
}

TEST(ExplainImage, OutputsAndErrors) {
  Rng rng(4);
  auto m = tiny_vit(rng);
  const Tensor x = Tensor::randn({1, 1, 28, 28}, rng);
  for (ImageMethod method :
       {ImageMethod::Attention, ImageMethod::Rollout, ImageMethod::GradRollout}) {
    ImageExplainOptions opt;
    opt.method = method;
    const ImageExplanation e = explain_image(*m, x, opt);
    const std::vector<float> r = e.relevance.to_vector<float>();
    EXPECT_FLOAT_EQ(*std::max_element(r.begin(), r.end()), 1.f) << image_method_name(method);
    EXPECT_GE(*std::min_element(r.begin(), r.end()), 0.f);
    double total = 0;
    for (double p : e.probs) total += p;
    EXPECT_NEAR(total, 1.0, 1e-9);
    EXPECT_EQ(e.target, e.predicted);
  }
  for (const auto& p : m->parameters()) EXPECT_FALSE(p.grad().defined());  // left clean
  const json j = explanation_to_json(explain_image(*m, x));
  ASSERT_EQ(j["attention"].size(), 2u);          // [layer]
  EXPECT_EQ(j["attention"][0].size(), 2u);       // [head]
  EXPECT_EQ(j["attention"][0][0].size(), 50u);   // [query]
  EXPECT_EQ(j["attention"][0][0][0].size(), 50u);  // [key]
  EXPECT_EQ(j["relevance"].size(), 7u);

  ImageExplainOptions bad;
  bad.method = ImageMethod::GradCam;
  EXPECT_THROW(explain_image(*m, x, bad), ValueError);  // a ViT has no feature map
  bad.method = ImageMethod::Attention;
  bad.layer = 2;
  EXPECT_THROW(explain_image(*m, x, bad), ValueError);
  bad.layer = -1;
  bad.head = 2;
  EXPECT_THROW(explain_image(*m, x, bad), ValueError);
  bad.head = -1;
  bad.target = 10;
  EXPECT_THROW(explain_image(*m, x, bad), ValueError);
  EXPECT_THROW(explain_image(*m, Tensor::zeros({2, 1, 28, 28})), ShapeError);
  EXPECT_THROW(parse_image_method("saliency"), ValueError);

  auto cnn = make_image_model("cnn_se", {{"channels", {8, 16}}}, rng);
  cnn->eval();
  EXPECT_THROW(explain_image(*cnn, x), ValueError);  // rollout needs attention
  bad = {};
  bad.method = ImageMethod::GradCam;
  const ImageExplanation e = explain_image(*cnn, x, bad);
  EXPECT_EQ(e.relevance.shape(), Shape({14, 14}));  // last stage before its pool
  EXPECT_EQ(e.gates.size(), 2u);
}

// The bar task: class 0 a horizontal 2x10 bar, class 1 a vertical 10x2 bar, at a random place
// on faint noise (normalised values; the baseline 0 is the background).
void bar_batch(Rng& rng, int64_t n, Tensor& x, Tensor& y) {
  x = Tensor::randn({n, 1, 28, 28}, rng, DType::F32, 0.1);  // (N, 1, 28, 28)
  y = Tensor::zeros({n}, DType::I64);
  float* px = x.data<float>();
  int64_t* py = y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = rng.randint(2), h = c == 0 ? 2 : 10, w = c == 0 ? 10 : 2;
    const int64_t top = rng.randint(28 - h + 1), left = rng.randint(28 - w + 1);
    for (int64_t r = top; r < top + h; ++r)
      for (int64_t q = left; q < left + w; ++q) px[i * 784 + r * 28 + q] = 2.f;
    py[i] = c;
  }
}

double train_on_bars(ImageClassifier& m, Rng& rng, int64_t steps) {
  m.train();
  AdamW opt(m.named_parameters(), {.lr = 3e-3});
  Tensor x, y;
  for (int64_t s = 0; s < steps; ++s) {
    bar_batch(rng, 32, x, y);
    m.zero_grad();
    cross_entropy(m.forward(x), y).backward();
    opt.step();
  }
  m.eval();
  NoGradGuard no_grad;
  bar_batch(rng, 200, x, y);
  const std::vector<float> logits = m.forward(x).to_vector<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < 200; ++i)
    correct += (logits[2 * i + 1] > logits[2 * i]) == (y.data<int64_t>()[i] == 1);
  return correct / 200.0;
}

void expect_faithful(ImageClassifier& m, ImageMethod method, Rng& rng) {
  SCOPED_TRACE(image_method_name(method));
  double del = 0, del_random = 0, ins = 0, ins_random = 0;
  const int64_t n = 24;
  for (int64_t i = 0; i < n; ++i) {
    Tensor x, y;
    bar_batch(rng, 1, x, y);
    ImageExplainOptions opt;
    opt.method = method;
    const ImageExplanation e = explain_image(m, x, opt);
    const Faithfulness f = faithfulness(m, x, e.relevance, e.target, 0.f, rng);
    ASSERT_EQ(f.deletion.prob.size(), size_t(e.relevance.numel() + 1));
    EXPECT_NEAR(f.deletion.prob.front(), e.probs[e.target], 1e-5);  // nothing removed yet
    EXPECT_NEAR(f.insertion.prob.back(), e.probs[e.target], 1e-5);  // everything revealed
    del += f.deletion.area / n;
    del_random += f.deletion_random.area / n;
    ins += f.insertion.area / n;
    ins_random += f.insertion_random.area / n;
  }
  std::printf("%s: deletion area %.3f (random %.3f), insertion %.3f (random %.3f)\n",
              image_method_name(method).c_str(), del, del_random, ins, ins_random);
  EXPECT_LT(del, del_random - 0.05);
  EXPECT_GT(ins, ins_random + 0.05);
}

TEST(Faithfulness, ExplanationOrderBeatsRandomOnTrainedModels) {
  Rng rng(7);
  auto vit = tiny_vit(rng);
  ASSERT_GE(train_on_bars(*vit, rng, 250), 0.95) << "the tiny ViT did not learn the bar task";
  expect_faithful(*vit, ImageMethod::Rollout, rng);
  expect_faithful(*vit, ImageMethod::GradRollout, rng);

  auto cnn = make_image_model("cnn_se", {{"num_classes", 2}, {"channels", {8, 16}}, {"dropout", 0.0}}, rng);
  ASSERT_GE(train_on_bars(*cnn, rng, 150), 0.95) << "the tiny CNN did not learn the bar task";
  expect_faithful(*cnn, ImageMethod::GradCam, rng);
}

}  // namespace
}  // namespace focus
