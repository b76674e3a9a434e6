// Explaining image classifiers: which parts of the image a prediction rests on.
//   attention     one layer's attention of the class token (or pooling query) over the patches,
//                 one head or the head mean; exact maps from the fused kernel's log-sum-exp
//   rollout       Abnar & Zuidema 2020: R = prod_l (0.5 * mean_h A_l + 0.5 * I), the class
//                 token's (pooling query's) row of R over the patches
//   grad-rollout  Chefer et al. 2021 ("Generic attention-model explainability"): R = I,
//                 R += mean_h (dA_l (.) A_l)^+ R per layer, dA = d(target logit) / dA
//   grad-cam      Selvaraju et al. 2017 on the last feature map F (C, h, w):
//                 relu(sum_c mean_hw(dF_c) F_c)
// Relevance is a (gh, gw) grid over the image (ViT: the patch grid; CNN: the feature map),
// non-negative, scaled to max 1. Faithfulness (Petsiuk et al. 2018 deletion / insertion):
// cells removed (set to the baseline) or revealed in relevance order vs random order, the
// target class's probability tracked; the curves' areas summarise them.
// Letters: C channels, S image side, H heads, T tokens, P = gh * gw patches (cells).
// Limits: batch 1 (one image per call); token layout as the models here record it (a class token
// first, or a final (H, 1, T) pooling-query map); P must be a square number of patches.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/tensor/tensor.hpp"

namespace focus {

class ImageClassifier;
class Rng;

enum class ImageMethod { Attention, Rollout, GradRollout, GradCam };
std::string image_method_name(ImageMethod m);  // "attention", "rollout", ...
ImageMethod parse_image_method(const std::string& name);  // ValueError naming the choices
// The methods a model supports (attention ones need attention maps, grad-cam a feature map).
std::vector<ImageMethod> image_methods_for(ImageClassifier& model, const Tensor& x);

struct ImageExplainOptions {
  ImageMethod method = ImageMethod::Rollout;
  int64_t layer = -1;          // attention: the map (-1 = last); rollout: up to this block
  int64_t head = -1;           // attention: -1 = mean over heads
  int64_t target = -1;         // class explained; -1 = the predicted one
  double residual = 0.5;       // rollout: weight of the identity (skip connection)
};

struct ImageExplanation {
  ImageMethod method = ImageMethod::Rollout;
  int64_t target = 0, predicted = 0;
  std::vector<double> probs;   // softmax of the logits (classes)
  Tensor relevance;            // (gh, gw) F32, >= 0, max 1 (all zero when nothing is relevant)
  std::vector<Tensor> maps;    // raw attention per layer (H, Lq, Lk), detached; empty for CNNs
  std::vector<Tensor> gates;   // squeeze-and-excitation gates per block (C); empty for ViTs
};

// x (1, C, S, S), normalised as the model expects. The model must be in eval mode. ValueError
// for a method the model cannot do (names the ones it can), a layer / head / target out of range.
ImageExplanation explain_image(ImageClassifier& model, const Tensor& x,
                               const ImageExplainOptions& opt = {});

// Building blocks (public for tests). maps: per layer (H, T, T), rows summing to 1.
Tensor attention_rollout(const std::vector<Tensor>& maps, double residual = 0.5);  // (T, T)
// maps and their gradients, per layer (H, T, T) -> (T, T)
Tensor gradient_rollout(const std::vector<Tensor>& maps, const std::vector<Tensor>& grads);
// features and their gradient (C, h, w) -> (h, w), not normalised
Tensor grad_cam(const Tensor& features, const Tensor& dfeatures);

struct FaithfulnessCurve {
  std::vector<double> prob;  // target probability after k = 0..P cells removed / revealed
  double area = 0;           // trapezoid area under prob over the fraction k / P in [0, 1]
};
// The curve and its area from the probabilities after k = 0..P steps.
FaithfulnessCurve make_faithfulness_curve(std::vector<double> prob);
struct Faithfulness {
  FaithfulnessCurve deletion, insertion;                // in relevance order (most first)
  FaithfulnessCurve deletion_random, insertion_random;  // random orders (mean of `repeats`)
};
// Deletion / insertion over P units (image cells, source tokens) in order of `scores` (highest
// first, ties in index order) and in `repeats` random orders (averaged). probs(keep) returns the
// tracked probability for each keep mask (P entries, 1 = present); the shared core of
// faithfulness() and alignment_faithfulness().
using KeepProbs = std::function<std::vector<double>(const std::vector<std::vector<uint8_t>>& keep)>;
Faithfulness faithfulness_by_scores(const std::vector<double>& scores, const KeepProbs& probs,
                                    Rng& rng, int64_t repeats);
// Removing means setting the cell's pixels to `baseline` (a normalised value: the black
// background for Fashion-MNIST). Lower deletion area and higher insertion area = more faithful.
Faithfulness faithfulness(ImageClassifier& model, const Tensor& x, const Tensor& relevance,
                          int64_t target, float baseline, Rng& rng, int64_t repeats = 3);

// The mean over `images` (each (1, C, S, S)) of the faithfulness of `method`'s explanation of the
// predicted class: curves averaged point by point, areas averaged (equal to the mean curves').
Faithfulness mean_faithfulness(ImageClassifier& model, const std::vector<Tensor>& images,
                               ImageMethod method, float baseline, Rng& rng, int64_t repeats = 1);
// Areas (and the relevance-order curves) as JSON: deletion_area, insertion_area, *_random, ...
nlohmann::json faithfulness_to_json(const Faithfulness& f);
// Per-layer maps (H, Lq, Lk) as nested arrays [layer][head][query][key].
nlohmann::json attention_maps_json(const std::vector<Tensor>& maps);

// The explanation as JSON: method, target, probabilities, relevance grid, and the raw maps as
// nested arrays [layer][head][query][key] (and the gates [block][channel]).
nlohmann::json explanation_to_json(const ImageExplanation& e);

}  // namespace focus
