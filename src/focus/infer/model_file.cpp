// Model files (see model_file.hpp).
#include "focus/infer/model_file.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/infer/file_metadata.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {
constexpr const char* kFormat = "focus-image-classifier/1";

const std::string& need(const std::map<std::string, std::string>& meta, const std::string& key,
                        const std::string& path) {
  return metadata_field(meta, key, path, "focus model file");
}
}  // namespace

void save_model(const std::string& path, const Classifier& model, const ModelInfo& info) {
  FOCUS_CHECK(model.input_kind() != "text" || !info.tokenizer.empty(), FormatError,
              "'{}': a {} text model is saved with its tokenizer (ModelInfo::tokenizer is empty)",
              path, model.name());
  std::map<std::string, std::string> meta;
  if (!info.tokenizer.empty()) meta["tokenizer"] = info.tokenizer;
  meta["format"] = kFormat;
  meta["focus_version"] = FOCUS_VERSION;
  meta["task"] = info.task;
  meta["model"] = model.name();
  meta["model_config"] = model.config().dump();
  meta["class_names"] = nlohmann::json(info.class_names).dump();
  meta["normalization"] = nlohmann::json{{"mean", info.norm.mean}, {"std", info.norm.std}}.dump();
  // Exactly the double (17 significant digits round-trip), as a JSON number.
  meta["temperature"] = fmt::format("{:.17g}", info.temperature);
  if (info.quantized)
    meta["quantization"] = nlohmann::json{{"scheme", "int8 weights per output channel (symmetric), "
                                                     "int8 activations per row (dynamic); compiled "
                                                     "plans: u8 activations, static steps"},
                                          {"int8", info.int8_layers},
                                          {"f32", info.f32_layers},
                                          {"activation_ranges", info.activation_ranges},
                                          {"report", info.quantization_report}}
                               .dump();
  save_safetensors(path, model.state_dict(), meta);
}

LoadedModel load_model(const std::string& path) { return as_image_model(load_classifier(path), path); }

LoadedModel as_image_model(LoadedClassifier c, const std::string& path) {
  FOCUS_CHECK(dynamic_cast<ImageClassifier*>(c.model.get()) != nullptr, FormatError,
              "'{}' holds a {} model of {} input, not an image model", path, c.model->name(),
              c.model->input_kind());
  LoadedModel out;
  out.model.reset(static_cast<ImageClassifier*>(c.model.release()));
  out.info = std::move(c.info);
  return out;
}

LoadedClassifier load_classifier(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  const std::string& format = need(f.metadata, "format", path);
  FOCUS_CHECK(format == kFormat, FormatError, "'{}': unsupported model format '{}' (expected {})",
              path, format, kFormat);
  LoadedClassifier out;
  read_model_metadata(path, [&] {
    const auto cfg = nlohmann::json::parse(need(f.metadata, "model_config", path));
    Rng rng(0);
    out.model = make_classifier(need(f.metadata, "model", path), cfg, rng);
    out.info.class_names =
        nlohmann::json::parse(need(f.metadata, "class_names", path)).get<std::vector<std::string>>();
    const auto norm = nlohmann::json::parse(need(f.metadata, "normalization", path));
    out.info.norm.mean = norm.at("mean").get<float>();
    out.info.norm.std = norm.at("std").get<float>();
    out.info.task = need(f.metadata, "task", path);
    // Optional: files written before calibration existed carry none (T = 1).
    if (auto it = f.metadata.find("temperature"); it != f.metadata.end())
      out.info.temperature = nlohmann::json::parse(it->second).get<double>();
    if (auto it = f.metadata.find("tokenizer"); it != f.metadata.end()) out.info.tokenizer = it->second;
    if (auto it = f.metadata.find("quantization"); it != f.metadata.end()) {
      const auto q = nlohmann::json::parse(it->second);
      out.info.quantized = true;
      out.info.int8_layers = q.at("int8").get<std::vector<std::string>>();
      out.info.f32_layers = q.at("f32").get<std::vector<std::string>>();
      if (q.contains("report")) out.info.quantization_report = q.at("report");
      if (q.contains("activation_ranges"))
        out.info.activation_ranges = q.at("activation_ranges").get<std::map<std::string, float>>();
      for (const auto& [name, r] : out.info.activation_ranges)
        FOCUS_CHECK(std::isfinite(r) && r > 0, FormatError,
                    "'{}': quantization activation range of '{}' is {}: must be positive and finite",
                    path, name, r);
    }
  });
  FOCUS_CHECK(out.model->input_kind() != "text" || !out.info.tokenizer.empty(), FormatError,
              "'{}': the {} text model has no 'tokenizer' in its metadata", path,
              out.model->name());
  FOCUS_CHECK(std::isfinite(out.info.temperature) && out.info.temperature > 0, FormatError,
              "'{}': metadata 'temperature' {} must be a positive finite number", path,
              out.info.temperature);
  load_state_checked(*out.model, f.tensors, path);
  out.model->eval();
  return out;
}

}  // namespace focus
