// Image explanations: rollout, gradient rollout and Grad-CAM against hand-computed cases; the
// maps from the fused kernel equal the reference kernel's; bad requests throw typed errors; and
// faithfulness on small models trained here to a stated accuracy on a task whose evidence is known
// (a bar whose orientation is the class): the maps point at the bar, deleting cells in their
// order removes the evidence faster than random order, and inverted or shuffled maps (controls)
// fail the same checks.
//   Letters: N batch, H heads, T tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

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
// on faint noise (normalised values; the baseline 0 is the background). `boxes` (optional) gets
// each bar's pixel box {top, left, h, w}: the evidence, known by construction.
struct Box {
  int64_t top, left, h, w;
};
void bar_batch(Rng& rng, int64_t n, Tensor& x, Tensor& y, std::vector<Box>* boxes = nullptr) {
  x = Tensor::randn({n, 1, 28, 28}, rng, DType::F32, 0.1);  // (N, 1, 28, 28)
  y = Tensor::zeros({n}, DType::I64);
  float* px = x.data<float>();
  int64_t* py = y.data<int64_t>();
  if (boxes) boxes->clear();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = rng.randint(2), h = c == 0 ? 2 : 10, w = c == 0 ? 10 : 2;
    const int64_t top = rng.randint(28 - h + 1), left = rng.randint(28 - w + 1);
    for (int64_t r = top; r < top + h; ++r)
      for (int64_t q = left; q < left + w; ++q) px[i * 784 + r * 28 + q] = 2.f;
    py[i] = c;
    if (boxes) boxes->push_back({top, left, h, w});
  }
}

double bar_accuracy(ImageClassifier& m, Rng& rng) {
  NoGradGuard no_grad;
  Tensor x, y;
  bar_batch(rng, 200, x, y);
  const std::vector<float> logits = m.forward(x).to_vector<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < 200; ++i)
    correct += (logits[2 * i + 1] > logits[2 * i]) == (y.data<int64_t>()[i] == 1);
  return correct / 200.0;
}

// Trains in rounds of 50 steps until the model reaches `target` accuracy on fresh bars (or
// `max_steps`), so the explained model is as good as stated whatever path the kernels take
// (AVX-512, AVX2 and scalar kernels sum in different orders, and the runs diverge).
double train_on_bars(ImageClassifier& m, Rng& rng, double target, int64_t max_steps) {
  AdamW opt(m.named_parameters(), {.lr = 3e-3});
  Tensor x, y;
  double acc = 0;
  for (int64_t s = 0; s < max_steps && acc < target;) {
    m.train();
    for (int64_t k = 0; k < 50; ++k, ++s) {
      bar_batch(rng, 32, x, y);
      m.zero_grad();
      cross_entropy(m.forward(x), y).backward();
      opt.step();
    }
    m.eval();
    acc = bar_accuracy(m, rng);
  }
  return acc;
}

// What a relevance map is turned into before it is scored: the method's own map, or a control
// that a sound check must reject: the order reversed (least relevant first) or shuffled.
enum class Control { None, Inverted, Shuffled };

Tensor apply_control(const Tensor& relevance, Control c, Rng& rng) {
  std::vector<float> r = relevance.to_vector<float>();
  if (c == Control::Inverted)
    for (float& v : r) v = 1.f - v;
  if (c == Control::Shuffled)
    for (int64_t i = static_cast<int64_t>(r.size()) - 1; i > 0; --i)
      std::swap(r[i], r[rng.randint(i + 1)]);
  return Tensor::from_vector(std::vector<double>(r.begin(), r.end()), relevance.shape())
      .to(DType::F32);
}

// The share of the top-k cells that the bar touches (k = the cells it touches), over the share
// expected of k cells drawn at random (k / P): 1 = chance, 0 = the bar ranked last. Ties are
// ordered at random, so a flat map scores chance.
double bar_precision_over_chance(const Tensor& relevance, const Box& box, Rng& rng) {
  const int64_t gh = relevance.size(0), gw = relevance.size(1), P = gh * gw;
  const std::vector<float> r = relevance.to_vector<float>();
  // Pixel (y, x) belongs to cell (y * gh / 28, x * gw / 28), as faithfulness() maps them.
  std::vector<uint8_t> on(P, 0);
  for (int64_t y = box.top; y < box.top + box.h; ++y)
    for (int64_t x = box.left; x < box.left + box.w; ++x) on[(y * gh / 28) * gw + x * gw / 28] = 1;
  const int64_t k = std::count(on.begin(), on.end(), uint8_t(1));
  std::vector<int64_t> order(P);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = P - 1; i > 0; --i) std::swap(order[i], order[rng.randint(i + 1)]);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return r[a] > r[b]; });
  int64_t hits = 0;
  for (int64_t i = 0; i < k; ++i) hits += on[order[i]];
  return (double(hits) / double(k)) / (double(k) / double(P));
}

// The verdict on one map (a method's, or a control of it) over 32 bar images.
//   Order: per image, the gain over random order is (deletion_random - deletion) + (insertion -
//   insertion_random), positive when the order removes the evidence sooner and restores it
//   sooner than chance. It passes with a mean gain above 0.2 and a one-sided t statistic above 3
//   (independent images; 3 random orders averaged in each).
//   Evidence: the bar is the evidence by construction; the map's top cells must be on it, at
//   least twice as often as chance (bar_precision_over_chance, mean over the images).
struct Verdict {
  double del = 0, del_random = 0, ins = 0, ins_random = 0, gain = 0, t = 0, on_bar = 0;
  bool order_beats_random() const { return gain > 0.2 && t > 3.0; }
  bool finds_the_bar() const { return on_bar > 2.0; }
};

Verdict judge(ImageClassifier& m, ImageMethod method, Control control, Rng& rng) {
  const int64_t n = 32;
  Verdict v;
  std::vector<double> gains;
  for (int64_t i = 0; i < n; ++i) {
    Tensor x, y;
    std::vector<Box> box;
    bar_batch(rng, 1, x, y, &box);
    ImageExplainOptions opt;
    opt.method = method;
    const ImageExplanation e = explain_image(m, x, opt);
    const Tensor rel = apply_control(e.relevance, control, rng);
    const Faithfulness f = faithfulness(m, x, rel, e.target, 0.f, rng, 3);
    EXPECT_EQ(f.deletion.prob.size(), size_t(rel.numel() + 1));
    EXPECT_NEAR(f.deletion.prob.front(), e.probs[e.target], 1e-5);  // nothing removed yet
    EXPECT_NEAR(f.insertion.prob.back(), e.probs[e.target], 1e-5);  // everything revealed
    v.del += f.deletion.area / n;
    v.del_random += f.deletion_random.area / n;
    v.ins += f.insertion.area / n;
    v.ins_random += f.insertion_random.area / n;
    gains.push_back(f.deletion_random.area - f.deletion.area + f.insertion.area -
                    f.insertion_random.area);
    v.on_bar += bar_precision_over_chance(rel, box[0], rng) / n;
  }
  double var = 0;
  for (double g : gains) v.gain += g / n;
  for (double g : gains) var += (g - v.gain) * (g - v.gain) / (n - 1);
  v.t = v.gain / std::sqrt(var / n + 1e-30);
  return v;
}

const char* control_name(Control c) {
  return c == Control::None ? "method" : c == Control::Inverted ? "inverted" : "shuffled";
}

// What a method is held to. Every control fails the order check (inverted: the evidence last;
// shuffled: chance), and the shuffled map fails the bar check. The inverted map fails the bar
// check only where the method's least relevant cells are off the bar: gradient rollout's ReLU
// zeroes cells of negative evidence, which lie on the bar too, so its inverse finds the bar again.
struct Claims {
  bool order_beats_random = true;
  bool inverse_misses_the_bar = true;
};

void expect_faithful(ImageClassifier& m, ImageMethod method, Claims claims, Rng& rng) {
  SCOPED_TRACE(image_method_name(method));
  for (Control c : {Control::None, Control::Inverted, Control::Shuffled}) {
    const Verdict v = judge(m, method, c, rng);
    std::printf(
        "%s/%s: deletion %.3f (random %.3f), insertion %.3f (random %.3f), gain %.3f (t %.1f), "
        "top cells on the bar %.2fx chance\n",
        image_method_name(method).c_str(), control_name(c), v.del, v.del_random, v.ins,
        v.ins_random, v.gain, v.t, v.on_bar);
    switch (c) {
      case Control::None:
        EXPECT_TRUE(v.finds_the_bar());
        if (claims.order_beats_random) {
          EXPECT_TRUE(v.order_beats_random());
        }
        break;
      case Control::Inverted:
        EXPECT_FALSE(v.order_beats_random()) << "inverted";
        if (claims.inverse_misses_the_bar) {
          EXPECT_FALSE(v.finds_the_bar()) << "inverted";
        }
        break;
      case Control::Shuffled:
        EXPECT_FALSE(v.order_beats_random()) << "shuffled";
        EXPECT_FALSE(v.finds_the_bar()) << "shuffled";
        break;
    }
  }
}

// Each model is trained to a stated accuracy, not for a fixed number of steps. Rollout and
// Grad-CAM orders beat random order on every model seen (gain 0.30-0.51, t >= 4.3 over seeds 7-11
// and the three ISAs); gradient rollout finds the bar as well (5-7x chance) but its order's gain
// over random ranges from -0.02 to 0.37 between equally accurate models (on Fashion-MNIST it is a
// little better than random, docs/EXPLAIN.md), so for it the order is reported, not asserted.
TEST(Faithfulness, MethodsPassAndControlsFailOnTrainedModels) {
  Rng rng(7);
  auto vit = tiny_vit(rng);
  const double vit_acc = train_on_bars(*vit, rng, 0.97, 1000);
  std::printf("vit accuracy %.3f\n", vit_acc);
  ASSERT_GE(vit_acc, 0.95) << "the tiny ViT did not learn the bar task";
  expect_faithful(*vit, ImageMethod::Rollout, {}, rng);
  expect_faithful(*vit, ImageMethod::GradRollout,
                  {.order_beats_random = false, .inverse_misses_the_bar = false}, rng);

  auto cnn = make_image_model("cnn_se", {{"num_classes", 2}, {"channels", {8, 16}}, {"dropout", 0.0}}, rng);
  const double cnn_acc = train_on_bars(*cnn, rng, 0.97, 1000);
  std::printf("cnn accuracy %.3f\n", cnn_acc);
  ASSERT_GE(cnn_acc, 0.95) << "the tiny CNN did not learn the bar task";
  expect_faithful(*cnn, ImageMethod::GradCam, {}, rng);
}

}  // namespace
}  // namespace focus
