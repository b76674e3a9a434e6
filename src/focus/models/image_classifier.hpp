// The image-classifier interface: a Classifier (models/classifier.hpp) that takes (N, C, S, S)
// images (Fashion-MNIST: C = 1, S = 28) and returns (N, classes) logits; and the registry of the
// image models.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/models/classifier.hpp"

namespace focus {

class ImageClassifier : public Classifier {
 public:
  std::string input_kind() const override { return "image"; }
};

// Names accepted by make_image_model: "cnn_se", "vit".
std::vector<std::string> image_model_names();
// Builds a freshly initialised image model. Keys missing from `config` take their defaults; an
// unknown name, an unknown key, a value of the wrong type or out of range throws ValueError.
std::unique_ptr<ImageClassifier> make_image_model(const std::string& name,
                                                  const nlohmann::json& config, Rng& rng);

}  // namespace focus
