// The image models and their registry: config parsing (defaults, unknown keys, bad values),
// forward shapes, parameter counts (hand-computed) and names, config and state-dict round trips,
// a few SGD steps reducing the loss on a tiny batch, eval determinism, and the attention maps.
//   Letters: N batch, H heads, T tokens.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "focus/models/cnn_se.hpp"
#include "focus/models/vit.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::max_rel_diff;
using nlohmann::json;

namespace {

std::vector<std::string> param_names(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [n, t] : m.named_parameters()) out.push_back(n);
  return out;
}

// Small configs so the training tests run in well under a second.
json tiny(const std::string& name) {
  if (name == "cnn_se") return {{"channels", {8, 16}}, {"dropout", 0.0}};
  return {{"dim", 16}, {"depth", 1}, {"heads", 2}, {"dropout", 0.0}, {"patch", 7}};
}

}  // namespace

TEST(Registry, BuildsByNameAndRejectsBadConfigs) {
  Rng rng(1);
  EXPECT_EQ(image_model_names(), (std::vector<std::string>{"cnn_se", "vit"}));
  for (const std::string& name : image_model_names()) {
    auto m = make_image_model(name, json(), rng);  // null config: all defaults
    EXPECT_EQ(m->name(), name);
    auto m2 = make_image_model(name, json::object(), rng);
    EXPECT_EQ(m2->config(), m->config());
  }
  EXPECT_THROW(make_image_model("resnet", json(), rng), ValueError);
  EXPECT_THROW(make_image_model("vit", {{"dimension", 64}}, rng), ValueError);  // unknown key
  EXPECT_THROW(make_image_model("vit", {{"dim", "big"}}, rng), ValueError);     // wrong type
  EXPECT_THROW(make_image_model("vit", {{"dim", 64.5}}, rng), ValueError);      // not integer
  EXPECT_THROW(make_image_model("vit", {{"patch", 5}}, rng), ValueError);       // 28 % 5
  EXPECT_THROW(make_image_model("vit", {{"dim", 30}, {"heads", 4}}, rng), ValueError);
  EXPECT_THROW(make_image_model("vit", {{"kv_heads", 3}}, rng), ValueError);
  EXPECT_THROW(make_image_model("vit", {{"pool", "mean"}}, rng), ValueError);
  EXPECT_THROW(make_image_model("vit", {{"depth", 0}}, rng), ValueError);
  EXPECT_THROW(make_image_model("vit", {{"dropout", 1.0}}, rng), ValueError);
  EXPECT_THROW(make_image_model("vit", json::array({1, 2}), rng), ValueError);  // not an object
  EXPECT_THROW(make_image_model("cnn_se", {{"channels", json::array()}}, rng), ValueError);
  EXPECT_THROW(make_image_model("cnn_se", {{"channels", {8, -1}}}, rng), ValueError);
  EXPECT_THROW(make_image_model("cnn_se", {{"se_reduction", 0}}, rng), ValueError);
  EXPECT_THROW(make_image_model("cnn_se", {{"width", 8}}, rng), ValueError);
}

TEST(Registry, ConfigRoundTrip) {
  Rng rng(2);
  for (const std::string& name : image_model_names()) {
    auto m = make_image_model(name, tiny(name), rng);
    const json cfg = m->config();
    const json given = tiny(name);
    for (auto& [k, v] : given.items()) EXPECT_EQ(cfg.at(k), v) << name << " " << k;
    auto again = make_image_model(name, cfg, rng);
    EXPECT_EQ(again->config(), cfg);
    EXPECT_EQ(param_names(*again), param_names(*m));
  }
}

TEST(CnnSe, ShapesParameterCountAndNames) {
  Rng rng(3);
  auto m = make_image_model("cnn_se", json(), rng);
  // convs 9*(1*32 + 32*32 + 32*64 + 64*64 + 64*128 + 128*128) = 285,984; BN 2*(2*(32+64+128)) =
  // 896; SE 2*C*C/4 + C/4 + C for C = 32, 64, 128 = 11,032; head 128*10 + 10 = 1,290.
  EXPECT_EQ(m->num_parameters(), 299202);
  const auto names = param_names(*m);
  const std::vector<std::string> first = {
      "stages.0.conv1.weight",  "stages.0.bn1.weight",  "stages.0.bn1.bias",
      "stages.0.conv2.weight",  "stages.0.bn2.weight",  "stages.0.bn2.bias",
      "stages.0.se.fc1.weight", "stages.0.se.fc1.bias", "stages.0.se.fc2.weight",
      "stages.0.se.fc2.bias",   "stages.1.conv1.weight"};
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(names[i], first[i]);
  EXPECT_EQ(names.back(), "head.bias");
  EXPECT_EQ(m->named_buffers().size(), 12u);  // running_mean/var of 6 BNs
  const Tensor y = m->forward(Tensor::zeros({2, 1, 28, 28}));
  EXPECT_EQ(y.shape(), Shape({2, 10}));
  EXPECT_THROW(m->forward(Tensor::zeros({2, 3, 28, 28})), ShapeError);
  EXPECT_THROW(m->forward(Tensor::zeros({2, 1, 4, 4})), ShapeError);  // 3 poolings need >= 8
  m->eval();
  ForwardTrace trace;
  const Tensor x = Tensor::randn({2, 1, 28, 28}, rng);
  EXPECT_EQ(max_rel_diff(m->forward_traced(x, trace), m->forward(x)), 0.0);
  EXPECT_TRUE(trace.attention.empty());
  ASSERT_EQ(trace.channel_gates.size(), 3u);  // (N, C_s) per stage, each in (0, 1)
  const int64_t channels[] = {32, 64, 128};
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(trace.channel_gates[s].shape(), Shape({2, channels[s]}));
    const Tensor g = trace.channel_gates[s].contiguous();
    const auto [lo, hi] = std::minmax_element(g.data<float>(), g.data<float>() + g.numel());
    EXPECT_GT(*lo, 0.f);
    EXPECT_LT(*hi, 1.f);
  }
  EXPECT_EQ(trace.features.shape(), Shape({2, 128, 7, 7}));  // last stage, before its pool
}

TEST(Vit, ShapesParameterCountAndNames) {
  Rng rng(4);
  auto m = make_image_model("vit", json(), rng);
  // patch 16*64 + 64; cls 64; positions 50*64; per block: norms 4*64, q/k/v/out 4*(64*64 + 64),
  // mlp 64*128 + 128 + 128*64 + 64 -> 33,472 x 4; final norm 128; head 64*10 + 10.
  EXPECT_EQ(m->num_parameters(), 1088 + 64 + 3200 + 4 * 33472 + 128 + 650);
  const auto names = param_names(*m);
  // A module's own parameters come before its children's.
  const std::vector<std::string> first = {"cls_token", "patch_embed.weight", "patch_embed.bias",
                                          "pos_embed.weight", "blocks.0.norm1.weight"};
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(names[i], first[i]);
  const std::vector<std::string> last = {"blocks.3.linear2.bias", "norm.weight", "norm.bias",
                                         "head.weight", "head.bias"};
  for (size_t i = 0; i < last.size(); ++i) EXPECT_EQ(names[names.size() - 5 + i], last[i]);
  EXPECT_EQ(dynamic_cast<Vit&>(*m).num_tokens(), 50);
  EXPECT_EQ(m->forward(Tensor::zeros({3, 1, 28, 28})).shape(), Shape({3, 10}));
  EXPECT_THROW(m->forward(Tensor::zeros({3, 1, 32, 32})), ShapeError);

  auto pooled = make_image_model("vit", {{"pool", "attn"}, {"kv_heads", 2}}, rng);
  const auto pnames = param_names(*pooled);
  EXPECT_EQ(std::count(pnames.begin(), pnames.end(), "cls_token"), 0);
  EXPECT_EQ(std::count(pnames.begin(), pnames.end(), "pool.query"), 1);
  EXPECT_EQ(std::count(pnames.begin(), pnames.end(), "pool.attn.k_proj.weight"), 1);
  EXPECT_EQ(pooled->forward(Tensor::zeros({2, 1, 28, 28})).shape(), Shape({2, 10}));
}

TEST(Vit, ConvolutionalStem) {
  Rng rng(5);
  auto m = make_image_model("vit", {{"stem", "conv"}}, rng);
  // stem.0: conv 1 -> 32 (3x3, stride 2) + BN; stem.1: conv 32 -> 64 + BN; patch_embed 1x1
  // 64 -> 64; the rest as the patch stem's model (patch_embed 16*64 + 64 replaced).
  const int64_t stem = 32 * 9 + 2 * 32 + 64 * 32 * 9 + 2 * 64 + 64 * 64 + 64;
  EXPECT_EQ(m->num_parameters(), stem + 64 + 3200 + 4 * 33472 + 128 + 650);
  const auto names = param_names(*m);
  for (const char* n : {"stem.0.conv.weight", "stem.0.bn.weight", "stem.1.conv.weight",
                        "stem.1.bn.bias", "patch_embed.weight"})
    EXPECT_EQ(std::count(names.begin(), names.end(), n), 1) << n;
  EXPECT_EQ(dynamic_cast<Vit&>(*m).num_tokens(), 50);
  EXPECT_EQ(m->forward(Tensor::zeros({2, 1, 28, 28})).shape(), Shape({2, 10}));
  EXPECT_THROW(make_image_model("vit", {{"stem", "resnet"}}, rng), ValueError);
  EXPECT_THROW(make_image_model("vit", {{"stem", "conv"}, {"patch", 7}}, rng), ValueError);
}

TEST(Vit, AttentionMaps) {
  Rng rng(5);
  for (const char* pool : {"cls", "attn"}) {
    SCOPED_TRACE(pool);
    auto m =
        make_image_model("vit", {{"dim", 16}, {"depth", 2}, {"heads", 2}, {"pool", pool}}, rng);
    m->eval();
    const Tensor x = Tensor::randn({2, 1, 28, 28}, rng);
    ForwardTrace trace;
    const Tensor y = m->forward_traced(x, trace);
    const std::vector<Tensor>& maps = trace.attention;
    EXPECT_EQ(max_rel_diff(y, m->forward(x)), 0.0);
    const bool attn = std::string(pool) == "attn";
    const int64_t T = attn ? 49 : 50;
    ASSERT_EQ(maps.size(), attn ? 3u : 2u);
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(maps[i].shape(), Shape({2, 2, T, T}));
    if (attn) {
      EXPECT_EQ(maps[2].shape(), Shape({2, 2, 1, T}));
    }
    for (const Tensor& mp : maps)
      for (double s : sum(mp, {-1}).to_vector<double>()) EXPECT_NEAR(s, 1.0, 1e-5);
  }
}

TEST(ImageModels, StateDictRoundTripAndEvalDeterminism) {
  for (const std::string& name : image_model_names()) {
    SCOPED_TRACE(name);
    Rng r1(6), r2(7), data(8);
    json cfg = tiny(name);
    cfg["dropout"] = 0.2;
    auto a = make_image_model(name, cfg, r1);
    auto b = make_image_model(name, cfg, r2);
    const Tensor x = Tensor::randn({4, 1, 28, 28}, data);  // (N, 1, 28, 28)
    a->forward(x);  // training forward: moves BN running statistics away from their init
    a->eval();
    b->eval();
    const Tensor ya = a->forward(x);
    EXPECT_GT(max_rel_diff(b->forward(x), ya), 1e-3);
    b->load_state_dict(a->state_dict());
    EXPECT_EQ(max_rel_diff(b->forward(x), ya), 0.0);
    EXPECT_EQ(max_rel_diff(a->forward(x), ya), 0.0);  // eval: deterministic
    a->train();
    EXPECT_GT(max_rel_diff(a->forward(x), a->forward(x)), 1e-6);  // dropout in training
  }
}

TEST(ImageModels, SgdStepsReduceTheLoss) {
  for (const std::string& name : image_model_names()) {
    SCOPED_TRACE(name);
    Rng rng(9);
    auto m = make_image_model(name, tiny(name), rng);
    const Tensor x = Tensor::randn({8, 1, 28, 28}, rng);  // (N, 1, 28, 28)
    const Tensor labels =
        Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}, {8});  // (N)
    double first = 0, last = 0;
    for (int step = 0; step < 12; ++step) {
      m->zero_grad();
      const Tensor loss = cross_entropy(m->forward(x), labels);
      (step == 0 ? first : last) = loss.item();
      loss.backward();
      for (Tensor p : m->parameters()) add_inplace(p, p.grad(), name == "cnn_se" ? -0.3 : -0.1);
    }
    EXPECT_LT(last, 0.8 * first) << first << " -> " << last;
  }
}
