// Classifier model files (format focus-image-classifier/1, the name kept from when only images
// were classified): safetensors holding the model's state dict, with everything needed to rebuild
// and use it in `__metadata__`: format tag, focus version, model name and config, class names,
// input normalisation, the calibration temperature (optional key "temperature": files written
// before it existed load with T = 1; infer/calibration fits it), for text models the tokenizer
// (key "tokenizer", text/tokenizer.hpp's JSON) that turns raw text into the model's ids, and the
// int8 plan (optional key "quantization", written by `focus quantize`: which Linear / Conv2d
// layers run int8 and which stay F32; the tensors stay F32 in the file and are quantised when the
// model loads with int8 weights, infer/quantize.hpp). Readable by any safetensors reader.
// Written atomically (temp name + rename).
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
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
  // Text models: the tokenizer's JSON (text/tokenizer.hpp to_json), "" for image models.
  std::string tokenizer;
  // The int8 plan: layers (Module::named_modules names) that run int8 under `--weights int8`; the
  // others stay F32. quantized = false: no plan (int8 then means every Linear and Conv2d).
  bool quantized = false;
  std::vector<std::string> int8_layers, f32_layers;
  // The compiled int8 plan's activation bounds, measured by `focus quantize` on its calibration
  // images (infer/image_plan.hpp measure_activation_ranges): positive, finite; empty: none.
  std::map<std::string, float> activation_ranges;
  nlohmann::json quantization_report;  // what `focus quantize` measured (kept verbatim)
};

struct LoadedModel {
  std::unique_ptr<ImageClassifier> model;  // in eval mode
  ModelInfo info;
};

struct LoadedClassifier {
  std::unique_ptr<Classifier> model;  // in eval mode
  ModelInfo info;
};

// FormatError for a text model without info.tokenizer.
void save_model(const std::string& path, const Classifier& model, const ModelInfo& info);
// Any classifier. IOError for a missing file; FormatError for a file that is not a focus model
// (names what is missing), a corrupt file, a temperature that is not a positive finite number, a
// text model without a tokenizer, or tensors that do not match the model the metadata describes.
LoadedClassifier load_classifier(const std::string& path);
// An image model (what the image predictor, the explainers and the server take): errors as
// load_classifier, and FormatError naming the input kind for a text model.
LoadedModel load_model(const std::string& path);
// The image model in `c` (FormatError naming `path` and the input kind when it is not one).
LoadedModel as_image_model(LoadedClassifier c, const std::string& path);

}  // namespace focus
