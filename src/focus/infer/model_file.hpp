// Image-model files (format focus-image-classifier/1): safetensors holding the model's state
// dict, with everything needed to rebuild and use it in `__metadata__`: format tag, focus version,
// model name and config, class names, input normalisation, and the calibration temperature
// (optional key "temperature": files written before it existed load with T = 1; infer/calibration
// fits it). Readable by any safetensors reader. Written atomically (temp name + rename).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/data/image.hpp"
#include "focus/infer/file_metadata.hpp"
#include "focus/models/image_classifier.hpp"

namespace focus {

struct ModelInfo {
  std::vector<std::string> class_names;
  Normalization norm;
  std::string task = "fashion-mnist";
  // Temperature scaling: calibrated probabilities are softmax(logits / temperature) (1 = none).
  double temperature = 1;
};

struct LoadedModel {
  std::unique_ptr<ImageClassifier> model;  // in eval mode
  ModelInfo info;
};

void save_model(const std::string& path, const ImageClassifier& model, const ModelInfo& info);
// IOError for a missing file; FormatError for a file that is not a focus model (names what is
// missing), a corrupt file, a temperature that is not a positive finite number, or tensors that do not match the model the metadata describes.
LoadedModel load_model(const std::string& path);

}  // namespace focus
