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

class ImageClassifier : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;  // (N, C, S, S) -> (N, classes)
  // Like forward; models with attention append one map per attention layer to *maps (see each
  // model for the shapes), others leave it unchanged.
  virtual Tensor forward_with_attention(const Tensor& x, std::vector<Tensor>* maps) {
    (void)maps;
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
