// Attention-head pruning (infer/head_pruning.hpp): a pruned vit equals the unpruned one with the
// dropped heads' gates at zero (plain and grouped-query attention), survives a save/load round
// trip with its per-block head counts, the importance scores equal a finite difference of the
// loss with respect to each gate (double precision), the choice of heads follows the scores and
// keeps a group per block, and bad keep lists are refused with the block named.
#include <gtest/gtest.h>

#include <cmath>

#include "data/temp_dir.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/head_pruning.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/models/vit.hpp"
#include "focus/nn/attention.hpp"
#include "focus/ops/loss.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

namespace focus {
namespace {

// A 2-block vit (dim 16, 4 heads of 4) with every parameter random (the projections' biases
// start at zero; random ones make a wrong bias slice show).
std::unique_ptr<Vit> random_vit(int64_t kv_heads, uint64_t seed = 11) {
  VitConfig c;
  c.dim = 16;
  c.heads = 4;
  c.kv_heads = kv_heads;
  c.depth = 2;
  c.patch = 7;
  c.dropout = 0.0;
  Rng rng(seed);
  auto m = std::make_unique<Vit>(c, rng);
  NoGradGuard g;
  for (Tensor p : m->parameters()) p.copy_(Tensor::randn(p.shape(), rng, p.dtype(), 0.3));
  m->eval();
  return m;
}

Tensor random_images(int64_t n, uint64_t seed) {
  Rng rng(seed);
  return Tensor::randn({n, 1, 28, 28}, rng);
}

// Gates on `model`'s blocks: 1 for the kept heads, 0 for the others.
void gate_to(Vit& model, const std::vector<std::vector<int64_t>>& keep) {
  const auto attn = block_attentions(model);
  for (size_t l = 0; l < attn.size(); ++l) {
    std::vector<float> g(size_t(attn[l]->options().n_heads), 0.f);
    for (int64_t h : keep[l]) g[size_t(h)] = 1.f;
    attn[l]->set_head_gate(Tensor::from_vector(g, {int64_t(g.size())}));
  }
}

void expect_pruned_equals_gated(int64_t kv_heads, const std::vector<std::vector<int64_t>>& keep) {
  auto model = random_vit(kv_heads);
  const Tensor x = random_images(3, 7);
  NoGradGuard g;
  auto pruned = prune_heads(*model, keep);
  const Tensor full = model->forward(x);
  gate_to(*model, keep);
  const Tensor gated = model->forward(x);
  const Tensor small = pruned->forward(x);
  // The pruned model really is smaller, and computes what the gated one does.
  EXPECT_LT(pruned->num_parameters(), model->num_parameters());
  EXPECT_LT(testing::max_abs_diff(small, gated), 1e-5);
  EXPECT_GT(testing::max_abs_diff(small, full), 1e-4);  // the dropped heads mattered
  const auto attn = block_attentions(*pruned);
  for (size_t l = 0; l < keep.size(); ++l) {
    EXPECT_EQ(attn[l]->options().n_heads, int64_t(keep[l].size()));
    EXPECT_EQ(attn[l]->q_proj->out_features(), 4 * int64_t(keep[l].size()));
    EXPECT_EQ(attn[l]->out_proj->in_features(), 4 * int64_t(keep[l].size()));
  }
}

TEST(HeadPruning, PrunedEqualsGatedAtZero) {
  expect_pruned_equals_gated(0, {{0, 2}, {1, 2, 3}});
  expect_pruned_equals_gated(0, {{3}, {0, 1, 2, 3}});
}

TEST(HeadPruning, GroupedQueryPrunesWholeGroups) {
  expect_pruned_equals_gated(2, {{2, 3}, {0, 1}});
  auto model = random_vit(2);
  auto pruned = prune_heads(*model, {{2, 3}, {0, 1, 2, 3}});
  const auto attn = block_attentions(*pruned);
  EXPECT_EQ(attn[0]->options().n_kv_heads, 1);  // K/V shrink with their group
  EXPECT_EQ(attn[0]->k_proj->out_features(), 4);
  EXPECT_EQ(attn[1]->options().n_kv_heads, 2);
}

TEST(HeadPruning, PrunedFileLoadsAndMatches) {
  testing::TempDir dir;
  auto model = random_vit(0);
  auto pruned = prune_heads(*model, {{1}, {0, 3}});
  EXPECT_EQ(pruned->config().at("layer_heads"), nlohmann::json({1, 2}));
  EXPECT_FALSE(model->config().contains("layer_heads"));  // unpruned configs stay as they were
  const std::string p = dir.file("pruned.safetensors");
  save_model(p, *pruned, testing::tiny_image_info());
  LoadedModel back = load_model(p);
  const Tensor x = random_images(2, 9);
  NoGradGuard g;
  EXPECT_EQ(testing::max_abs_diff(back.model->forward(x), pruned->forward(x)), 0.0);
  // Pruning a pruned model again works on its current heads.
  auto again = prune_heads(*back.model, {{0}, {1}});
  EXPECT_EQ(again->config().at("layer_heads"), nlohmann::json({1, 1}));
}

TEST(HeadPruning, ConfigRefusesBadLayerHeads) {
  nlohmann::json j = {{"dim", 16}, {"heads", 4}, {"depth", 2}, {"layer_heads", {1, 2, 3}}};
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"layer_heads", "depth 2"});
  j["layer_heads"] = {0, 2};
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"layer_heads", "[1, 4]"});
  j["layer_heads"] = {1, 2};
  j["kv_heads"] = 2;
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"multiple of 2"});
}

TEST(HeadPruning, BadKeepListsNameTheBlock) {
  auto mha = random_vit(0);
  testing::expect_error<ValueError>([&] { prune_heads(*mha, {{0}, {}}); }, {"block 1"});
  testing::expect_error<ValueError>([&] { prune_heads(*mha, {{2, 1}, {0}}); }, {"block 0", "ascending"});
  testing::expect_error<ValueError>([&] { prune_heads(*mha, {{0, 4}, {0}}); }, {"block 0"});
  testing::expect_error<ValueError>([&] { prune_heads(*mha, {{0}}); }, {"1 keep lists for 2 blocks"});
  auto gqa = random_vit(2);
  testing::expect_error<ValueError>([&] { prune_heads(*gqa, {{0, 1}, {1, 2}}); }, {"block 1", "K/V group"});
  testing::expect_error<ValueError>([&] { prune_heads(*gqa, {{0}, {0, 1}}); }, {"block 0"});
  testing::expect_error<ValueError>([&] { prune_heads(*testing::tiny_cnn(), {{0}}); }, {"not a vit"});
}

// Eight random images of the vit's shape with labels 0..7.
ImageDataset tiny_dataset() {
  Rng rng(21);
  std::vector<uint8_t> px(8 * 28 * 28);
  for (uint8_t& v : px) v = uint8_t(rng.next_u64() % 256);
  std::vector<int64_t> labels = {0, 1, 2, 3, 4, 5, 6, 7};
  return ImageDataset(std::move(px), std::move(labels), 1, 28, 28, testing::tiny_image_info().class_names);
}

// The mean cross-entropy of samples idx with every block's gates set to `gates` (F64, no grad).
double loss_with_gates(Vit& model, const ImageDataset& ds, const std::vector<int64_t>& idx,
                       const std::vector<std::vector<double>>& gates) {
  NoGradGuard g;
  const auto attn = block_attentions(model);
  for (size_t l = 0; l < attn.size(); ++l)
    attn[l]->set_head_gate(Tensor::from_vector(gates[l], {int64_t(gates[l].size())}));
  const Batch b = make_batch(ds, idx, Normalization{});
  const double loss = cross_entropy(model.forward(b.x.to(DType::F64)), b.y).item();
  for (auto* a : attn) a->set_head_gate(Tensor());
  return loss;
}

TEST(HeadPruning, ImportanceEqualsFiniteDifferenceOfTheLoss) {
  for (int64_t kv : {0, 2}) {
    auto model = random_vit(kv, 13);
    model->to(DType::F64);
    const ImageDataset ds = tiny_dataset();
    const std::vector<int64_t> first = {0, 1, 2, 3}, second = {4, 5, 6, 7}, all = {0, 1, 2, 3, 4, 5, 6, 7};
    // Two batches of 4: the score is the mean over batches of |dL_batch/dg|.
    const HeadImportance imp = head_importance(*model, ds, all, Normalization{}, 4);
    ASSERT_EQ(imp.scores.size(), 2u);
    EXPECT_EQ(imp.group, kv == 0 ? 1 : 2);
    EXPECT_EQ(imp.images, 8);
    const double eps = 1e-6;
    for (size_t l = 0; l < 2; ++l)
      for (size_t h = 0; h < 4; ++h) {
        double expected = 0;
        for (const auto* part : {&first, &second}) {
          std::vector<std::vector<double>> up(2, std::vector<double>(4, 1.0)), down = up;
          up[l][h] += eps;
          down[l][h] -= eps;
          expected += std::abs(loss_with_gates(*model, ds, *part, up) -
                               loss_with_gates(*model, ds, *part, down)) / (2 * eps);
        }
        expected /= 2;
        EXPECT_NEAR(imp.scores[l][h], expected, 1e-6 + 1e-5 * expected) << "block " << l << " head " << h;
      }
    // The gates are removed afterwards.
    for (auto* a : block_attentions(*model)) EXPECT_FALSE(a->head_gate().defined());
  }
}

TEST(HeadPruning, ChoiceFollowsNormalisedScoresAndKeepsAGroupPerBlock) {
  HeadImportance imp;
  // Block 0's scores are large but one head is weak relative to its block; block 1 is uniform.
  imp.scores = {{10.0, 1.0, 10.0, 10.0}, {0.1, 0.1, 0.1, 0.1}};
  auto keep = choose_heads_to_keep(imp, 1.0 / 8);  // one of 8 heads: block 0's head 1
  EXPECT_EQ(keep, (std::vector<std::vector<int64_t>>{{0, 2, 3}, {0, 1, 2, 3}}));
  keep = choose_heads_to_keep(imp, 0.0);
  EXPECT_EQ(keep, (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {0, 1, 2, 3}}));
  // 7 of 8 asked: each block keeps one head, so 6 go.
  imp.scores = {{4.0, 3.0, 2.0, 1.0}, {1.0, 2.0, 3.0, 4.0}};
  keep = choose_heads_to_keep(imp, 7.0 / 8);
  EXPECT_EQ(keep, (std::vector<std::vector<int64_t>>{{0}, {3}}));
  // Groups of 2 go whole, scored by their sum.
  imp.group = 2;
  keep = choose_heads_to_keep(imp, 0.25);  // 1 of 4 groups: block 0's (2, 3) or block 1's (0, 1)
  const int64_t removed = 8 - int64_t(keep[0].size() + keep[1].size());
  EXPECT_EQ(removed, 2);
  EXPECT_TRUE(keep[0] == (std::vector<int64_t>{0, 1}) || keep[1] == (std::vector<int64_t>{2, 3}));
  testing::expect_error<ValueError>([&] { choose_heads_to_keep(imp, 1.0); }, {"fraction"});
}

}  // namespace
}  // namespace focus
