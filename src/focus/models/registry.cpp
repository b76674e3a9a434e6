// The image-model registry (see image_classifier.hpp).
#include <nlohmann/json.hpp>

#include "focus/models/cnn_se.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/models/vit.hpp"

namespace focus {

std::vector<std::string> image_model_names() { return {"cnn_se", "vit"}; }

std::unique_ptr<ImageClassifier> make_image_model(const std::string& name,
                                                  const nlohmann::json& config, Rng& rng) {
  if (name == "cnn_se") return std::make_unique<CnnSe>(CnnSeConfig::from_json(config), rng);
  if (name == "vit") return std::make_unique<Vit>(VitConfig::from_json(config), rng);
  throw ValueError(fmt::format("make_image_model: unknown model '{}' (known: cnn_se, vit)", name));
}

}  // namespace focus
