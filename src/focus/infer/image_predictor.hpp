// ImagePredictor: the image-classifier predictor. Loads any focus image-model file
// (focus-image-classifier/1: cnn_se, vit), puts the model in eval mode once, checks inputs (the
// batch's rank, shape and dtype, every value finite), runs batched no-grad inference (chunks of
// at most max_batch images) and returns per-image class probabilities and the top k with class
// names. Probabilities are calibrated: softmax(logits / T) with the file's temperature T
// (ModelInfo::temperature, fitted by infer/calibration; 1 for files without one); the option
// `calibrated = false` gives the model's raw softmax. Inputs are pixels in [0, 1] before normalisation (the model file's mean / std are
// applied here), either a tensor or decoded images (data/png.hpp read_png: any size, gray or
// RGB, converted as `focus predict` always has: to gray for a 1-channel model, then resized).
// Letters: N images, C channels, S the side the model takes, K classes.
// A batched answer equals the answer to the same image alone up to float rounding (eval mode:
// no batch statistics, no dropout); tests/infer checks it.
//
//   ImagePredictor p("runs/cnn/model_best.safetensors");
//   const auto r = p.predict({read_png("shoe.png")}, 3);  // r[0].top[0].name == "Sneaker"
//
// Not thread-safe: one call at a time per predictor.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "focus/data/image.hpp"
#include "focus/infer/image_plan.hpp"
#include "focus/infer/input_error.hpp"
#include "focus/infer/model_file.hpp"

namespace focus {

struct ImagePredictorOptions {
  int64_t max_batch = 256;  // images per forward pass
  bool calibrated = true;   // divide the logits by the file's temperature before the softmax
  // Inference weights: "f32"; "bf16" (cnn_se: the compiled plan in bfloat16, refused with a
  // ValueError on a CPU without AVX512-BF16 / AMX; vit: bf16 copies of the Linear weights,
  // nn/module.hpp); "int8" (the file's int8 plan, or every Linear and Conv2d when it has none:
  // infer/quantize.hpp); "auto" (int8 when the file has a plan, else f32).
  // ValueError for anything else.
  std::string weights = "f32";
  // With F32 or int8 weights, run the model compiled for inference (infer/image_plan.hpp: batch
  // norm folded, fused primitives, oneDNN; int8 there has static activation steps) where a plan
  // exists for it; false runs the model's own layers (int8: dynamic per-row activations), as a
  // caller that changes the model through model() needs (quantize's per-layer errors do).
  bool compiled = true;
};

struct ClassScore {
  int64_t index = 0;
  std::string name;  // the model file's class name (the index as text when it has none)
  float prob = 0;
};

struct ImagePrediction {
  std::vector<float> probs;     // (K)
  std::vector<ClassScore> top;  // the k most probable, most probable first (ties: lower index)
};

// The threads the predictor runs a batch of `batch` images on without a compiled plan: one up to
// 8 images (their parallel regions' wake-ups cost more than a second core gives: vit on the
// quiet 2-core Zen 5, one thread against two, batch 1 3,230 vs 1,507 images/s, batch 8 5,145 vs
// 3,407, batch 16 even), else the thread policy's count (kernels/cpu.hpp). A plan decides
// for itself by its work per chunk (infer/image_plan.hpp).
int inference_threads(int64_t batch);

class ImagePredictor {
 public:
  // Loads `path` (IOError if missing; FormatError if it is not an image-model file: a seq2seq
  // model, a training checkpoint, corrupt metadata or tensors).
  explicit ImagePredictor(const std::string& path, const ImagePredictorOptions& opt = {});
  explicit ImagePredictor(LoadedModel loaded, const ImagePredictorOptions& opt = {});

  int64_t channels() const { return channels_; }  // C
  int64_t image_size() const { return size_; }    // S
  int64_t num_classes() const { return classes_; }  // K

  // pixels (N, C, S, S) F32 in [0, 1] -> probabilities (N, K). ShapeError for another shape,
  // DTypeError for another dtype, InputError naming the first image with a NaN or infinity.
  Tensor probabilities(const Tensor& pixels) const;
  // The model's raw logits (N, K), before any temperature; the same checks as probabilities.
  Tensor logits(const Tensor& pixels) const;
  // The temperature probabilities() applies: the file's when calibrated, else 1.
  double temperature() const { return opt_.calibrated ? loaded_.info.temperature : 1.0; }
  // probabilities, with the top k (1 <= k; at most K are returned) of each image.
  std::vector<ImagePrediction> predict(const Tensor& pixels, int64_t k = 5) const;
  // Decoded images, converted to (C, S, S) first; InputError naming an empty or malformed image,
  // or an RGB model given a gray image.
  std::vector<ImagePrediction> predict(const std::vector<Image>& images, int64_t k = 5) const;
  // The pixels predict(images) feeds the model: each image converted to (C, S, S) -> (N, C, S, S),
  // values in [0, 1]; InputError as predict(images).
  Tensor pixels(const std::vector<Image>& images) const;
  // pixels (N, C, S, S) in [0, 1] -> the model's input, normalised with the file's mean / std.
  Tensor normalized(const Tensor& pixels) const;

  // Runs a batch of blank images of every size the forward pass splits batches of up to
  // max_batch into (powers of two), so that nothing is built or allocated on a later call of up
  // to max_batch images: the compiled plan's primitive lists and activation buffers, packed
  // weights. A server calls it at load, so its first requests wait for no compilation and its
  // memory does not grow under load. Returns the batch sizes run.
  std::vector<int64_t> warm_up() const;

  const ModelInfo& info() const { return loaded_.info; }
  // "f32", "bf16" or "int8": what the model runs ("auto" resolved).
  const std::string& weights() const { return weights_; }
  // What runs the forward pass: the plan's describe() ("onednn cnn_se (isa ...)") or "native".
  std::string engine() const;
  // The compiled plan the predictor runs, or null (the model's own layers).
  const ImagePlan* plan() const { return plan_.get(); }
  // The model in eval mode (evaluation and explanations run it directly).
  ImageClassifier& model() const { return *loaded_.model; }

 private:
  LoadedModel loaded_;
  ImagePredictorOptions opt_;
  int64_t channels_ = 1, size_ = 28, classes_ = 0;
  std::string weights_ = "f32";
  std::unique_ptr<ImagePlan> plan_;  // null: the model's own forward
};

}  // namespace focus
