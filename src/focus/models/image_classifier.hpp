// The image-classifier interface shared by every model the trainer and the explainers drive, and
// the registry that builds one from a name and a JSON config. Models take (N, C, S, S) images
// (Fashion-MNIST: C = 1, S = 28) and return (N, classes) logits.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/nn/module.hpp"

namespace focus {

class Rng;

// What a traced forward records for explanations (appended in forward order).
struct ForwardTrace {
  // One probability map per attention layer, (N, H, Lq, Lk): exact, detached when the fused
  // kernel ran, attached to the graph with the reference kernel (gradient-weighted methods).
  std::vector<Tensor> attention;
  // One (N, C) gate vector per squeeze-and-excitation block.
  std::vector<Tensor> channel_gates;
  // The last spatial feature map (N, C, h, w) before the classifier pools it, attached to the
  // graph (Grad-CAM).
  Tensor features;
};

class ImageClassifier : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;  // (N, C, S, S) -> (N, classes)
  // Like forward, and records what explanations need into `trace` (see ForwardTrace; each
  // model documents what it records). Models that record nothing leave it unchanged.
  virtual Tensor forward_traced(const Tensor& x, ForwardTrace& trace) {
    (void)trace;
    return forward(x);
  }
  // The full config (defaults filled in): make_image_model(name(), config()) rebuilds the model.
  virtual nlohmann::json config() const = 0;
  virtual std::string name() const = 0;
};

// Names accepted by make_image_model: "cnn_se", "vit".
std::vector<std::string> image_model_names();
// Builds a freshly initialised model. Keys missing from `config` take their defaults; an unknown
// name, an unknown key, a value of the wrong type or out of range throws ValueError.
std::unique_ptr<ImageClassifier> make_image_model(const std::string& name,
                                                  const nlohmann::json& config, Rng& rng);

}  // namespace focus
