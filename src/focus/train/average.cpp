// Checkpoint averaging (see average.hpp).
#include "focus/train/average.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "focus/io/safetensors.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// Metadata that may differ between the files of one model (a later epoch's training summary).
bool may_differ(const std::string& key) {
  return key == "extra" || key == "focus_version" || key == "averaged_from";
}

void check_same_model(const SafetensorsFile& a, const std::string& pa, const SafetensorsFile& b,
                      const std::string& pb) {
  for (const auto& [key, value] : a.metadata) {
    if (may_differ(key)) continue;
    auto it = b.metadata.find(key);
    FOCUS_CHECK(it != b.metadata.end(), FormatError,
                "cannot average '{}' with '{}': metadata '{}' is missing from the second", pa, pb,
                key);
    FOCUS_CHECK(it->second == value, FormatError,
                "cannot average '{}' with '{}': they differ in metadata '{}' (not the same model)",
                pa, pb, key);
  }
  for (const auto& [key, value] : b.metadata)
    FOCUS_CHECK(may_differ(key) || a.metadata.count(key), FormatError,
                "cannot average '{}' with '{}': metadata '{}' is missing from the first", pa, pb,
                key);
  FOCUS_CHECK(a.tensors.size() == b.tensors.size(), FormatError,
              "cannot average '{}' ({} tensors) with '{}' ({} tensors)", pa, a.tensors.size(), pb,
              b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    auto it = b.tensors.find(name);
    FOCUS_CHECK(it != b.tensors.end(), FormatError,
                "cannot average '{}' with '{}': tensor '{}' is missing from the second", pa, pb,
                name);
    const Tensor& u = it->second;
    FOCUS_CHECK(t.dtype() == u.dtype() && t.shape() == u.shape(), FormatError,
                "cannot average '{}' with '{}': tensor '{}' is {} {} in one and {} {} in the other",
                pa, pb, name, dtype_name(t.dtype()), to_string(t.shape()), dtype_name(u.dtype()),
                to_string(u.shape()));
  }
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F64 || t == DType::BF16; }

}  // namespace

AverageReport average_model_files(const std::vector<std::string>& inputs, const std::string& out) {
  namespace fs = std::filesystem;
  FOCUS_CHECK(!inputs.empty(), ValueError, "average: no model files given");
  for (const std::string& in : inputs)
    FOCUS_CHECK(!(fs::exists(in) && fs::exists(out) && fs::equivalent(in, out)), ValueError,
                "average: the output '{}' is one of the inputs (it would be overwritten)", out);
  SafetensorsFile first = load_safetensors(inputs[0]);
  auto fmt_it = first.metadata.find("format");
  FOCUS_CHECK(fmt_it != first.metadata.end() && fmt_it->second.rfind("focus-", 0) == 0,
              FormatError, "'{}' is not a focus model file (no focus format tag)", inputs[0]);
  FOCUS_CHECK(fmt_it->second.find("checkpoint") == std::string::npos, FormatError,
              "'{}' is a training checkpoint ({}); average model files (model_epoch_NNN, "
              "model_best, model_last) instead",
              inputs[0], fmt_it->second);
  // Running sums in double, one per float tensor.
  std::map<std::string, Tensor> sum;
  for (const auto& [name, t] : first.tensors)
    if (is_float(t.dtype())) sum[name] = t.to(DType::F64).clone();
  for (size_t f = 1; f < inputs.size(); ++f) {
    const SafetensorsFile next = load_safetensors(inputs[f]);
    check_same_model(first, inputs[0], next, inputs[f]);
    for (const auto& [name, t] : next.tensors) {
      if (!is_float(t.dtype())) {
        FOCUS_CHECK(t.to_vector<int64_t>() == first.tensors.at(name).to_vector<int64_t>(),
                    FormatError, "cannot average '{}' with '{}': integer tensor '{}' differs",
                    inputs[0], inputs[f], name);
        continue;
      }
      Tensor& s = sum.at(name);
      const Tensor x = t.to(DType::F64).contiguous();
      double* ps = s.data<double>();
      const double* px = x.data<double>();
      for (int64_t i = 0; i < s.numel(); ++i) ps[i] += px[i];
    }
  }
  AverageReport r;
  r.files = int(inputs.size());
  const double inv = 1.0 / double(inputs.size());
  for (auto& [name, s] : sum) {
    double* ps = s.data<double>();
    for (int64_t i = 0; i < s.numel(); ++i) ps[i] *= inv;
    first.tensors[name] = s.to(first.tensors.at(name).dtype());
    ++r.tensors;
    r.parameters += s.numel();
  }
  first.metadata["averaged_from"] = nlohmann::json(inputs).dump();
  save_safetensors(out, first.tensors, first.metadata);
  return r;
}

}  // namespace focus
