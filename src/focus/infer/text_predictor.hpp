// Text classification inference: a text model file (infer/model_file.hpp, with its tokenizer)
// applied to raw texts, a batch at a time: normalise + tokenize (text/labelled.hpp), pad, one
// forward, calibrated probabilities (softmax of logits / temperature), the predicted class, and
// the attention-pooling weights per token (the first explanation). Immutable after construction;
// predict may be called from several threads only if the caller serialises them (the model's
// forward is not re-entrant).
//
//   const TextPredictor p = TextPredictor::load("runs/text/model_best.safetensors");
//   for (const TextPrediction& r : p.predict({"great phone", "broke in a day"})) ... r.label
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/infer/model_file.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {

class TextFastPath;
class TextTransformer;

// How logits are computed: Fast (infer/text_fast.hpp: the kernels over a kept workspace, the
// default where the model allows it) or Reference (the model's forward through ops and layers).
// Both logits() and predict() (its pooling weights included) follow the path.
enum class TextPath { Fast, Reference };

struct TextPrediction {
  int64_t label = 0;                 // argmax
  std::vector<double> probs;         // (K), calibrated unless the predictor was made raw
  std::vector<std::string> tokens;   // the model's tokens of the text (after normalisation)
  std::vector<double> pooling;       // (tokens) attention-pooling weights, summing to 1
};

class TextPredictor {
 public:
  // FormatError when the file holds no text model; `calibrated` false: temperature 1.
  explicit TextPredictor(LoadedClassifier lm, bool calibrated = true);
  ~TextPredictor();
  TextPredictor(TextPredictor&&) noexcept;
  static TextPredictor load(const std::string& path, bool calibrated = true);

  // One forward over the whole batch (empty input: empty output). Texts must be valid UTF-8
  // (ValueError naming the text's index otherwise).
  std::vector<TextPrediction> predict(const std::vector<std::string>& texts) const;
  // Raw logits (N, K) F32 of the texts (no temperature).
  Tensor logits(const std::vector<std::string>& texts) const;
  // Raw logits (N, K) F32 of token ids (N, L) I64, right-padded with 0 (the model's checks:
  // ShapeError / ValueError). No autograd graph; a batch of up to 8 rows runs on one thread
  // (infer/image_predictor.hpp inference_threads).
  Tensor logits_ids(const Tensor& ids) const;

  // Fast falls back to Reference when the model is outside the fast path (path() then says so).
  void set_path(TextPath path) { use_fast_ = path == TextPath::Fast; }
  TextPath path() const { return use_fast_ && fast_ ? TextPath::Fast : TextPath::Reference; }

  const ModelInfo& info() const { return info_; }
  const Tokenizer& tokenizer() const { return *tok_; }
  int64_t num_classes() const { return int64_t(info_.class_names.size()); }
  // The ids a text is cut to (the model's input_len: max_len, or ngram_len for the n-gram branch).
  int64_t max_len() const { return max_len_; }

 private:
  Tensor encode(const std::vector<std::string>& texts, std::vector<std::vector<int64_t>>* ids) const;
  std::unique_ptr<Classifier> model_;
  TextTransformer* text_ = nullptr;
  ModelInfo info_;
  std::unique_ptr<Tokenizer> tok_;
  int64_t max_len_ = 0;
  double temperature_ = 1;
  std::unique_ptr<TextFastPath> fast_;  // null when the model is outside the fast path
  bool use_fast_ = true;
};

}  // namespace focus
