// Attention-head pruning of a vit (issue 22; Michel, Levy & Neubig 2019, "Are sixteen heads
// really better than one?"): each block's heads are scored by the gradient of the loss with
// respect to a gate on the head's output, the least important are removed physically (smaller
// Q/K/V/O matrices, the config's layer_heads records the heads left per block), and `focus
// prune-heads` fine-tunes the result (train/fine_tune.hpp).
//
//   HeadImportance imp = head_importance(model, train, val_indices, info.norm);
//   auto keep = choose_heads_to_keep(imp, 0.3);                // >= 30% of the heads go
//   std::unique_ptr<ImageClassifier> small = prune_heads(model, keep);
//
// Importance of head h of block l: I = mean over the images' batches of |dL/dg| at g = 1 (L the
// batch's mean cross-entropy, g the head's gate, models in eval mode: no dropout). Scores are
// ranked after dividing each block's by their L2 norm (the paper's per-layer normalisation).
// Grouped-query attention: the heads sharing a K/V head form a group of heads / kv_heads, and
// groups are pruned whole (their score: the sum of their heads'), so every block keeps the
// same group size and its K/V projections shrink with its Q projection. Every block keeps at
// least one group. Only the blocks' self-attention is pruned (not pool "attn"'s query).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "focus/data/dataset.hpp"
#include "focus/models/image_classifier.hpp"

namespace focus {

class MultiHeadAttention;

// The self-attention of each block ("blocks.{i}.self_attn"), in block order. ValueError when the
// model has none (a cnn_se).
std::vector<MultiHeadAttention*> block_attentions(const Module& model);

struct HeadImportance {
  std::vector<std::vector<double>> scores;  // [block][head]: mean |dL/dgate| over the batches
  int64_t group = 1;                        // heads per K/V head (1 without grouped-query)
  int64_t images = 0;
};

// Gate gradients of `model` (put in eval mode, left so, gates removed) on samples `indices` of
// `ds`, normalised with `norm`, in batches of `batch`. ValueError for no index or one outside ds.
HeadImportance head_importance(ImageClassifier& model, const ImageDataset& ds,
                               std::span<const int64_t> indices, const Normalization& norm,
                               int64_t batch = 256);

// Per block the heads to keep (ascending indices into the block's current heads): the
// round(fraction * groups) groups of lowest layer-normalised importance go, as long as their
// block keeps one. ValueError for a fraction outside [0, 1).
std::vector<std::vector<int64_t>> choose_heads_to_keep(const HeadImportance& imp, double fraction);

// A new vit with only the `keep` heads of each block (whole K/V groups; ascending, distinct,
// at least one group per block), the other weights copied: its logits equal the original's with
// the dropped heads' gates at zero. ValueError for a model that is not a vit or a keep list that
// breaks those rules (names the block).
std::unique_ptr<ImageClassifier> prune_heads(const ImageClassifier& model,
                                             const std::vector<std::vector<int64_t>>& keep);

}  // namespace focus
