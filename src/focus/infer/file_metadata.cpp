// Model-file metadata helpers (see file_metadata.hpp).
#include "focus/infer/file_metadata.hpp"

#include <nlohmann/json.hpp>

#include "focus/io/safetensors.hpp"

namespace focus {

const std::string& metadata_field(const std::map<std::string, std::string>& meta,
                                  const std::string& key, const std::string& path,
                                  const char* what) {
  auto it = meta.find(key);
  FOCUS_CHECK(it != meta.end(), FormatError, "'{}' is not a {}: metadata '{}' is missing", path,
              what, key);
  return it->second;
}

void load_state_checked(Module& model, const StateDict& sd, const std::string& path) {
  try {
    model.load_state_dict(sd);
  } catch (const Error& e) {
    throw FormatError(fmt::format("'{}': {}", path, e.what()));
  }
}

void read_model_metadata(const std::string& path, const std::function<void()>& read) {
  try {
    read();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("'{}': corrupt model metadata ({})", path, e.what()));
  } catch (const ValueError& e) {
    throw FormatError(fmt::format("'{}': the model metadata is invalid: {}", path, e.what()));
  } catch (const FormatError& e) {  // a malformed part (a tokenizer) that does not name the file
    const std::string what = e.what();
    if (what.find(path) != std::string::npos) throw;
    throw FormatError(fmt::format("'{}': {}", path, what));
  }
}

std::string model_file_format(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("format");
  return it == f.metadata.end() ? std::string() : it->second;
}

}  // namespace focus
