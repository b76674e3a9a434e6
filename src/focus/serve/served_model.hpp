// A model as the server holds it: the predictor for its family (image classifier, text
// classifier, seq2seq translator or sequential recommender), its name, file, version (the first 12 hex digits of the file's SHA-256, so two
// replicas serving the same bytes report the same version) and load time. Immutable once loaded
// and shared (shared_ptr<const ServedModel>): a reload builds a new one and swaps the pointer, and
// requests admitted before the swap finish on the version they were admitted to.
// Image models served by several executors (serve/scheduler.hpp) hold one predictor per executor
// and rung (`replicas`): ImagePredictor runs one call at a time, so two batches computing at once
// each need their own plan, activations and scratch; the replicas share nothing mutable.
#pragma once
#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "focus/infer/image_predictor.hpp"
#include "focus/infer/recommender.hpp"
#include "focus/infer/text_predictor.hpp"
#include "focus/infer/translator.hpp"

namespace focus {

enum class ModelKind { Image, Text, Seq2Seq, Recsys };
const char* model_kind_name(ModelKind k);  // "image", "text", "seq2seq", "recsys"
// The kind in a sentence: "an image classifier", "a text classifier", "a seq2seq model", "a recommender".
const char* model_kind_phrase(ModelKind k);
// The endpoint a kind answers on: classify (image, text), translate, recommend.
const char* model_kind_endpoint(ModelKind k);

struct ServedModelOptions {
  DType weights = DType::F32;  // seq2seq inference weights (F32, BF16 or I8)
  int64_t max_batch = 64;      // image predictor's chunk size
  std::string image_weights = "f32";  // image models: f32 | int8 | auto (ImagePredictorOptions)
  // Image models under an SLO: the ladder's weights, most accurate first (rung 0 replaces
  // image_weights); each rung is loaded once. Empty: one variant.
  std::vector<std::string> image_ladder;
  // Image models: predictors per rung (>= 1: one per executor that may run the model at once),
  // each warmed up on `replica_threads` threads (0: the thread policy's count), the count its
  // batches will run on.
  int replicas = 1;
  int replica_threads = 0;
};

struct ServedModel {
  std::string name, path, version;
  std::string file_sha256;  // of the whole file
  ModelKind kind = ModelKind::Image;
  double load_seconds = 0;
  std::unique_ptr<ImagePredictor> image;  // kind == Image (the SLO ladder's rung 0)
  std::vector<std::unique_ptr<ImagePredictor>> faster;  // the ladder's rungs 1.. (faster variants)
  int rungs() const { return 1 + int(faster.size()); }
  const ImagePredictor& image_rung(int i) const {
    return i <= 0 || faster.empty() ? *image : *faster[size_t(std::min<int>(i, int(faster.size())) - 1)];
  }
  // Image models: replica r's (0 <= r < replicas()) rung i; replica 0 is image / faster above.
  std::vector<std::unique_ptr<ImagePredictor>> copies;  // replica r >= 1, rung k at (r - 1) * rungs() + k
  int replicas() const { return kind == ModelKind::Image ? 1 + int(copies.size()) / rungs() : 1; }
  const ImagePredictor& image_rung(int i, int replica) const {
    if (replica <= 0 || copies.empty()) return image_rung(i);
    const int k = std::clamp(i, 0, rungs() - 1);
    return *copies[size_t((std::min(replica, replicas() - 1) - 1) * rungs() + k)];
  }
  std::unique_ptr<Translator> translator;  // kind == Seq2Seq
  std::unique_ptr<TextPredictor> text;     // kind == Text
  std::unique_ptr<Recommender> recsys;     // kind == Recsys

  // The V2 model metadata (/v2/models/{m}): name, versions, platform, inputs, outputs.
  nlohmann::json metadata() const;
  // A short description for /v1/models: name, kind, version, classes or task.
  nlohmann::json summary() const;
};

// Loads and checks `path` (IOError / FormatError as the predictors' loaders: a missing file, a
// corrupt one, a digest mismatch, a file of another kind). Works on any thread.
std::shared_ptr<const ServedModel> load_served_model(const std::string& name,
                                                     const std::string& path,
                                                     const ServedModelOptions& opt = {});

}  // namespace focus
