// The classifier interface the one classification trainer (train/trainer.hpp), the model files
// (infer/model_file.hpp) and the explainers drive, whatever the input: images (ImageClassifier,
// (N, C, S, S) F32 pixels) or token sequences (TextTransformer, (N, L) I64 ids, 0 = padding).
// A model maps a batch of inputs to (N, classes) logits. The registry builds any of them from a
// name and a JSON config.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/nn/module.hpp"

namespace focus {

class Rng;

// What a traced forward records for explanations (appended in forward order).
struct ForwardTrace {
  // One probability map per attention layer, (N, H, Lq, Lk): exact, detached when the fused
  // kernel ran, attached to the graph with the reference kernel (gradient-weighted methods).
  // Models that pool by attention append the pooling query's map (N, H, 1, L) last.
  std::vector<Tensor> attention;
  // One (N, C) gate vector per squeeze-and-excitation block.
  std::vector<Tensor> channel_gates;
  // The last spatial feature map (N, C, h, w) before the classifier pools it, attached to the
  // graph (Grad-CAM).
  Tensor features;
};

class Classifier : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;  // a batch of N inputs -> (N, classes)
  // Like forward, and records what explanations need into `trace` (see ForwardTrace; each
  // model documents what it records). Models that record nothing leave it unchanged.
  virtual Tensor forward_traced(const Tensor& x, ForwardTrace& trace) {
    (void)trace;
    return forward(x);
  }
  // The outputs the trainer scores and their targets, for a batch's input x and targets y: by
  // default (forward(x), y), one (classes) row per input. A model predicting several things per
  // input returns (M, classes) logits and their (M) targets: text_mlm the masked tokens, sasrec
  // (trained at every position: y (N, L)) one row per target position. Targets of -100 are
  // ignored.
  virtual std::pair<Tensor, Tensor> forward_scored(const Tensor& x, const Tensor& y) {
    return {forward(x), y};
  }
  // The full config (defaults filled in): make_classifier(name(), config()) rebuilds the model.
  virtual nlohmann::json config() const = 0;
  virtual std::string name() const = 0;
  // The kind of input: "image" ((N, C, S, S) F32), "text" ((N, L) I64 token ids) or "items"
  // ((N, L) I64 item histories, sasrec).
  virtual std::string input_kind() const = 0;
  // Models with early-exit classifiers (vit "exits"): the loss of the exit classifiers on the
  // labels y of the last training-mode forward (summed over exits; the trainer adds it to the
  // final classifier's, so they train jointly), then forgotten. Undefined when there is none.
  virtual Tensor exit_loss(const Tensor& y) {
    (void)y;
    return Tensor();
  }
};

// Names accepted by make_classifier: "cnn_se", "vit", "text_transformer", "sasrec".
std::vector<std::string> classifier_names();
// Builds a freshly initialised model. Keys missing from `config` take their defaults; an unknown
// name, an unknown key, a value of the wrong type or out of range throws ValueError.
std::unique_ptr<Classifier> make_classifier(const std::string& name, const nlohmann::json& config,
                                            Rng& rng);

}  // namespace focus
