// The model registry (see classifier.hpp, image_classifier.hpp).
#include <nlohmann/json.hpp>

#include "focus/models/cnn_se.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/models/sasrec.hpp"
#include "focus/models/text_mlm.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/models/vit.hpp"

namespace focus {

std::vector<std::string> image_model_names() { return {"cnn_se", "vit"}; }
std::vector<std::string> classifier_names() { return {"cnn_se", "vit", "text_transformer", "text_mlm", "sasrec"}; }

std::unique_ptr<ImageClassifier> make_image_model(const std::string& name,
                                                  const nlohmann::json& config, Rng& rng) {
  if (name == "cnn_se") return std::make_unique<CnnSe>(CnnSeConfig::from_json(config), rng);
  if (name == "vit") return std::make_unique<Vit>(VitConfig::from_json(config), rng);
  throw ValueError(fmt::format("make_image_model: unknown image model '{}' (known: cnn_se, vit)", name));
}

std::unique_ptr<Classifier> make_classifier(const std::string& name, const nlohmann::json& config,
                                            Rng& rng) {
  if (name == "text_transformer")
    return std::make_unique<TextTransformer>(TextTransformerConfig::from_json(config), rng);
  if (name == "sasrec") return std::make_unique<SasRec>(SasRecConfig::from_json(config), rng);
  if (name == "text_mlm")
    return std::make_unique<TextMlm>(TextTransformerConfig::from_json(config), rng);
  if (name == "cnn_se" || name == "vit") return make_image_model(name, config, rng);
  throw ValueError(fmt::format(
      "make_classifier: unknown model '{}' (known: cnn_se, vit, text_transformer, text_mlm, sasrec)", name));
}

}  // namespace focus
