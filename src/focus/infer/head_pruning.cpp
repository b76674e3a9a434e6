// Attention-head importance and pruning (see head_pruning.hpp).
#include "focus/infer/head_pruning.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/models/vit.hpp"
#include "focus/nn/attention.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/loss.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

std::vector<MultiHeadAttention*> block_attentions(const Module& model) {
  std::vector<std::pair<int64_t, MultiHeadAttention*>> found;
  for (const auto& [name, m] : model.named_modules()) {
    // "blocks.{i}.self_attn"
    if (name.rfind("blocks.", 0) != 0 || name.size() < 17 ||
        name.compare(name.size() - 10, 10, ".self_attn") != 0)
      continue;
    const std::string idx = name.substr(7, name.size() - 17);
    if (idx.empty() || !std::all_of(idx.begin(), idx.end(), ::isdigit)) continue;
    if (auto* a = dynamic_cast<MultiHeadAttention*>(m)) found.emplace_back(std::stoll(idx), a);
  }
  FOCUS_CHECK(!found.empty(), ValueError,
              "head pruning: the model has no attention blocks (blocks.{{i}}.self_attn)");
  std::sort(found.begin(), found.end());
  std::vector<MultiHeadAttention*> out;
  for (const auto& f : found) out.push_back(f.second);
  return out;
}

HeadImportance head_importance(ImageClassifier& model, const ImageDataset& ds,
                               std::span<const int64_t> indices, const Normalization& norm,
                               int64_t batch) {
  FOCUS_CHECK(!indices.empty(), ValueError, "head importance: no image to score the heads on");
  FOCUS_CHECK(batch > 0, ValueError, "head importance: batch {} must be positive", batch);
  for (int64_t i : indices)
    FOCUS_CHECK(i >= 0 && i < ds.size(), ValueError, "head importance: index {} not in [0, {})",
                i, ds.size());
  model.eval();
  const std::vector<MultiHeadAttention*> attn = block_attentions(model);
  const DType dt = attn[0]->q_proj->weight.dtype();
  HeadImportance imp;
  imp.group = attn[0]->options().n_heads / attn[0]->options().n_kv_heads;
  std::vector<Tensor> gates;
  for (MultiHeadAttention* a : attn) {
    gates.push_back(Tensor::ones({a->options().n_heads}, dt));  // (H)
    gates.back().requires_grad_(true);
    a->set_head_gate(gates.back());
    imp.scores.emplace_back(size_t(a->options().n_heads), 0.0);
  }
  int64_t batches = 0;
  try {
    for (size_t lo = 0; lo < indices.size(); lo += size_t(batch), ++batches) {
      const auto part = indices.subspan(lo, std::min<size_t>(size_t(batch), indices.size() - lo));
      const Batch b = make_batch(ds, part, norm);
      Tensor x = b.x;
      if (dt != x.dtype()) x = x.to(dt);
      const Tensor loss = cross_entropy(model.forward(x), b.y);  // mean over the batch
      for (Tensor& g : gates) g.zero_grad();
      loss.backward();
      for (size_t l = 0; l < gates.size(); ++l) {
        const std::vector<double> d = gates[l].grad().to_vector<double>();
        for (size_t h = 0; h < d.size(); ++h) imp.scores[l][h] += std::abs(d[h]);
      }
      model.zero_grad();
    }
  } catch (...) {
    for (MultiHeadAttention* a : attn) a->set_head_gate(Tensor());
    throw;
  }
  for (MultiHeadAttention* a : attn) a->set_head_gate(Tensor());
  for (auto& layer : imp.scores)
    for (double& s : layer) s /= double(batches);
  imp.images = int64_t(indices.size());
  return imp;
}

std::vector<std::vector<int64_t>> choose_heads_to_keep(const HeadImportance& imp,
                                                       double fraction) {
  FOCUS_CHECK(fraction >= 0 && fraction < 1, ValueError,
              "head pruning: fraction {} is not in [0, 1)", fraction);
  FOCUS_CHECK(imp.group >= 1, ValueError, "head pruning: group size {} < 1", imp.group);
  struct Unit {
    double score;
    size_t layer;
    int64_t group;
  };
  std::vector<Unit> units;
  std::vector<int64_t> groups_left;
  for (size_t l = 0; l < imp.scores.size(); ++l) {
    const auto& s = imp.scores[l];
    double norm = 0;
    for (double v : s) norm += v * v;
    norm = std::sqrt(norm);
    const int64_t G = int64_t(s.size()) / imp.group;
    groups_left.push_back(G);
    for (int64_t g = 0; g < G; ++g) {
      double sum = 0;
      for (int64_t h = g * imp.group; h < (g + 1) * imp.group; ++h) sum += s[size_t(h)];
      units.push_back({norm > 0 ? sum / norm : 0.0, l, g});
    }
  }
  // Lowest first; ties by position, so the choice is deterministic.
  std::stable_sort(units.begin(), units.end(),
                   [](const Unit& a, const Unit& b) { return a.score < b.score; });
  int64_t to_drop = std::llround(fraction * double(units.size()));
  std::vector<std::vector<bool>> dropped(imp.scores.size());
  for (size_t l = 0; l < imp.scores.size(); ++l) dropped[l].assign(size_t(groups_left[l]), false);
  for (const Unit& u : units) {
    if (to_drop == 0) break;
    if (groups_left[u.layer] <= 1) continue;
    dropped[u.layer][size_t(u.group)] = true;
    --groups_left[u.layer];
    --to_drop;
  }
  std::vector<std::vector<int64_t>> keep(imp.scores.size());
  for (size_t l = 0; l < keep.size(); ++l)
    for (int64_t g = 0; g < int64_t(dropped[l].size()); ++g)
      if (!dropped[l][size_t(g)])
        for (int64_t h = g * imp.group; h < (g + 1) * imp.group; ++h) keep[l].push_back(h);
  return keep;
}

namespace {

// Rows (dim 0) or columns (dim 1) [u * width, (u + 1) * width) of `t` for each unit u of `units`.
Tensor take_blocks(const Tensor& t, int64_t dim, const std::vector<int64_t>& units, int64_t width) {
  std::vector<int64_t> idx;
  for (int64_t u : units)
    for (int64_t j = 0; j < width; ++j) idx.push_back(u * width + j);
  return index_select(t, dim, Tensor::from_vector(idx, {int64_t(idx.size())}));
}

}  // namespace

std::unique_ptr<ImageClassifier> prune_heads(const ImageClassifier& model,
                                             const std::vector<std::vector<int64_t>>& keep) {
  FOCUS_CHECK(model.name() == "vit", ValueError,
              "head pruning: model '{}' is not a vit (only vit blocks have prunable heads)",
              model.name());
  VitConfig cfg = VitConfig::from_json(model.config());
  FOCUS_CHECK(int64_t(keep.size()) == cfg.depth, ValueError,
              "head pruning: {} keep lists for {} blocks", keep.size(), cfg.depth);
  const int64_t group = cfg.kv_heads == 0 ? 1 : cfg.heads / cfg.kv_heads, Dh = cfg.dim / cfg.heads;
  std::vector<std::vector<int64_t>> kept_groups(keep.size());
  std::vector<int64_t> layer_heads;
  for (size_t l = 0; l < keep.size(); ++l) {
    const std::vector<int64_t>& k = keep[l];
    const int64_t H = cfg.heads_in(int64_t(l));
    FOCUS_CHECK(!k.empty() && int64_t(k.size()) % group == 0, ValueError,
                "head pruning: block {} keeps {} heads: not a positive multiple of the group size {}",
                l, k.size(), group);
    for (size_t i = 0; i < k.size(); ++i) {
      FOCUS_CHECK(k[i] >= 0 && k[i] < H && (i == 0 || k[i] > k[i - 1]), ValueError,
                  "head pruning: block {}'s heads to keep must be ascending, distinct and in "
                  "[0, {}) (entry {} is {})", l, H, i, k[i]);
      if (i % size_t(group) == 0) {
        FOCUS_CHECK(k[i] % group == 0, ValueError,
                    "head pruning: block {} keeps part of the K/V group of head {} (groups of {})",
                    l, k[i], group);
        kept_groups[l].push_back(k[i] / group);
      } else {
        FOCUS_CHECK(k[i] == k[i - 1] + 1 && k[i] / group == k[i - 1] / group, ValueError,
                    "head pruning: block {} keeps part of the K/V group of head {} (groups of {})",
                    l, k[i], group);
      }
    }
    layer_heads.push_back(int64_t(k.size()));
  }
  cfg.layer_heads = layer_heads;
  Rng rng(0);
  auto out = std::make_unique<Vit>(cfg, rng);
  NoGradGuard no_grad;
  StateDict sd = model.state_dict();
  const DType dt = sd.begin()->second.dtype();
  if (dt != DType::F32) out->to(dt);
  for (size_t l = 0; l < keep.size(); ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".self_attn.";
    const std::vector<int64_t>& heads = keep[l];
    for (const char* proj : {"q_proj.weight", "q_proj.bias"})
      if (sd.count(p + proj)) sd[p + proj] = take_blocks(sd.at(p + proj), 0, heads, Dh);
    for (const char* proj : {"k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias"})
      if (sd.count(p + proj)) sd[p + proj] = take_blocks(sd.at(p + proj), 0, kept_groups[l], Dh);
    sd[p + "out_proj.weight"] = take_blocks(sd.at(p + "out_proj.weight"), 1, heads, Dh);
  }
  out->load_state_dict(sd);
  out->train(model.is_training());
  return out;
}

}  // namespace focus
