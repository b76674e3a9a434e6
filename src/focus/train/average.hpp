// Checkpoint averaging: the element-wise mean of the weights of several model files of one model
// (the same format, task, architecture, configuration and vocabularies), written as a model file
// of that kind. Averaging the last epochs' weights is the Transformer papers' final model
// ("we averaged the last 5 checkpoints"); it works on any focus model file (seq2seq or image).
// Limits: every file is read whole; float tensors are averaged in double and written in their own
// dtype; integer tensors must be equal in every file; training checkpoints (optimizer state) are
// refused: average the model files a run writes (model_epoch_NNN.safetensors, see --keep-epochs).
#pragma once
#include <string>
#include <vector>

namespace focus {

struct AverageReport {
  int files = 0;
  int tensors = 0;
  long long parameters = 0;  // float elements averaged
};

// Writes the mean of `inputs` to `out` (atomically). Throws ValueError for fewer than one input
// or `out` among the inputs; IOError / FormatError (naming the file) for a missing or malformed
// file; FormatError naming both files and the key or tensor when two files differ in metadata
// (other than "extra" and "focus_version"), tensor names, shapes or dtypes, or integer values.
AverageReport average_model_files(const std::vector<std::string>& inputs, const std::string& out);

}  // namespace focus
