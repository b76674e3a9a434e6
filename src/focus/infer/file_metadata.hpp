// What every focus model file's reader shares (image and seq2seq model files here, the trainers'
// checkpoints in train/): the `__metadata__` lookup with its error, loading a state dict with
// errors that name the file, turning malformed metadata into a FormatError naming the file, and
// the "format" tag that tells the kinds of file apart. Every malformed piece is a FormatError
// naming `path`.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "focus/nn/module.hpp"

namespace focus {

// meta[key], or FormatError "'<path>' is not a <what>: metadata '<key>' is missing".
const std::string& metadata_field(const std::map<std::string, std::string>& meta,
                                  const std::string& key, const std::string& path,
                                  const char* what);

// model.load_state_dict(sd) with any error rethrown as FormatError naming `path`.
void load_state_checked(Module& model, const StateDict& sd, const std::string& path);

// Model files: run `read` and turn JSON errors into "corrupt model metadata", a ValueError (a bad
// config) into "the model metadata is invalid", and prefix `path` to a FormatError that does not
// name it (a tokenizer's).
void read_model_metadata(const std::string& path, const std::function<void()>& read);

// The "format" tag of a focus safetensors file ("" when it has none): "focus-image-classifier/1",
// "focus-seq2seq/1", "focus-checkpoint/1", ... IOError / FormatError as load_safetensors.
std::string model_file_format(const std::string& path);

}  // namespace focus
