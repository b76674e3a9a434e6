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
//   early exits (DeeBERT-style, issue 22): after each block listed in `exits`, a classifier
//     LayerNorm + Linear D -> classes on the pooled tokens (the class token, or their mean with
//     pool "attn"), trained jointly (exit_loss, added by the trainer). In eval mode with
//     exit_threshold <= 1, an image leaves at the first exit whose calibrated confidence
//     max softmax(z / exit_temperatures[j]) reaches the threshold, its logits that exit's;
//     the others run on. exit_threshold > 1 (the default): no image exits, the plain model.
// Letters: N batch, S image size, D = dim, T tokens (P + 1 with a class token), H heads.
// Parameter names: cls_token (pool "cls" only), stem.{i}.conv.weight / stem.{i}.bn.* (stem
// "conv" only), patch_embed.*, pos_embed.weight, blocks.{i}.*,
// norm.*, pool.* (pool "attn" only), head.*, exits.{j}.norm.* / exits.{j}.head.* (with exits).
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
  // Early exits: block indices (ascending, < depth - 1), the confidence threshold and one
  // temperature per exit (empty = 1 each; `focus early-exit` fits them).
  std::vector<int64_t> exits;
  double exit_threshold = 2.0;
  std::vector<double> exit_temperatures;
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

  // ---- early exit ----
  // Every exit's logits (N, classes), then the final classifier's: no image leaves early.
  std::vector<Tensor> forward_exits(const Tensor& x);
  Tensor exit_loss(const Tensor& y) override;
  // Changes the threshold and temperatures the forward pass uses (and config() reports).
  // ValueError for temperatures that are not one positive number per exit.
  void set_exit_policy(double threshold, const std::vector<double>& temperatures);
  // Blocks each image of the last eval-mode forward() ran through (depth when none left early).
  const std::vector<int64_t>& last_layers_used() const { return layers_used_; }

 private:
  Tensor run(const Tensor& x, std::vector<Tensor>* maps);  // maps: nullptr = none kept
  Tensor embed(const Tensor& x);                           // (N, C, S, S) -> (N, T, D)
  Tensor pooled(const Tensor& h, std::vector<Tensor>* maps);  // after norm: (N, T, D) -> (N, D)
  Tensor exit_logits(size_t j, const Tensor& h);           // (N, T, D) -> (N, classes)
  Tensor run_early_exit(const Tensor& x);
  std::vector<std::shared_ptr<LayerNorm>> exit_norms_;
  std::vector<std::shared_ptr<Linear>> exit_heads_;
  std::vector<int64_t> layers_used_;
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
