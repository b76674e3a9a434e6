// vit: a small Vision Transformer for 28x28 grey images.
//   patches: stem "patch": Conv2d(kernel = stride = patch) -> (N, P, D), P = (S / patch)^2 (49 by
//     default); stem "conv" (Xiao et al. 2021, "Early convolutions help transformers see
//     better"): log2(patch) conv3x3 stride 2 + BatchNorm + ReLU layers (D/2 channels, the last D),
//     then a 1x1 Conv2d D -> D as the patch embedding (patch must be a power of two).
//   tokens: [class token] + patches, + learned positions, dropout
//   depth x pre-norm TransformerEncoderLayer (GELU MLP of width mlp_ratio * D), final LayerNorm;
//     block i has layer_heads[i] heads of D / heads dims each (fewer than `heads` after
//     `focus prune-heads`; with kv_heads, layer_heads[i] * kv_heads / heads K/V heads)
//   pooling: the class token's output ("cls") or AttentionPooling over the tokens ("attn")
//   head: Linear D -> classes.
// Letters: N batch, S image size, D = dim, T tokens (P + 1 with a class token), H heads.
// Parameter names: cls_token (pool "cls" only), stem.{i}.conv.weight / stem.{i}.bn.* (stem
// "conv" only), patch_embed.*, pos_embed.weight, blocks.{i}.*,
// norm.*, pool.* (pool "attn" only), head.*.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/models/image_classifier.hpp"

namespace focus {

class AttentionPooling;
class BatchNorm2d;
class Conv2d;
class Dropout;
class LayerNorm;
class LearnedPositionalEncoding;
class Linear;
class TransformerEncoderLayer;

struct VitConfig {
  int64_t image_size = 28;
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  int64_t patch = 4;  // must divide image_size
  int64_t dim = 64;
  int64_t depth = 4;
  int64_t heads = 4;
  int64_t kv_heads = 0;  // 0: heads (no grouped-query attention)
  double mlp_ratio = 2.0;
  double dropout = 0.1;       // after the positions, in residual branches and the MLP
  double attn_dropout = 0.0;  // on attention probabilities
  std::string pool = "cls";   // "cls" or "attn"
  std::string stem = "patch";  // "patch" or "conv"
  // Heads kept per block after pruning (models/head_pruning.hpp): empty = `heads` in every block
  // (files written before pruning existed); else depth values in [1, heads], each a multiple of
  // heads / kv_heads (whole K/V groups are pruned). The head size stays dim / heads.
  std::vector<int64_t> layer_heads;
  int64_t heads_in(int64_t block) const {
    return layer_heads.empty() ? heads : layer_heads[size_t(block)];
  }

  static VitConfig from_json(const nlohmann::json& j);  // ValueError on bad keys/values
  nlohmann::json to_json() const;  // layer_heads only when set (unpruned files stay as they were)

 private:
  nlohmann::json to_json_without_pruning() const;
};

class Vit : public ImageClassifier {
 public:
  Vit(const VitConfig& cfg, Rng& rng);
  Tensor forward(const Tensor& x) override;  // (N, C, S, S) -> (N, classes)
  // Records depth maps (N, H, T, T) in trace.attention, then with pool "attn" the pooling
  // query's map (N, H, 1, T). The maps are exact; with the fused attention kernel (the default)
  // they are recomputed from its log-sum-exp and detached, with the reference kernel
  // (set_attention_kernel) they stay attached to the graph (for gradient-weighted explanations).
  Tensor forward_traced(const Tensor& x, ForwardTrace& trace) override;
  nlohmann::json config() const override;
  std::string name() const override { return "vit"; }
  int64_t num_tokens() const;  // T

 private:
  Tensor run(const Tensor& x, std::vector<Tensor>* maps);  // maps: nullptr = none kept
  VitConfig cfg_;
  std::vector<std::shared_ptr<Conv2d>> stem_conv_;     // stem "conv" only
  std::vector<std::shared_ptr<BatchNorm2d>> stem_bn_;  // stem "conv" only
  std::shared_ptr<Conv2d> patch_embed_;
  Tensor cls_token_;  // (1, 1, D), undefined with pool "attn"
  std::shared_ptr<LearnedPositionalEncoding> pos_embed_;
  std::shared_ptr<Dropout> dropout_;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> blocks_;
  std::shared_ptr<LayerNorm> norm_;
  std::shared_ptr<AttentionPooling> pool_;  // pool "attn" only
  std::shared_ptr<Linear> head_;
};

}  // namespace focus
