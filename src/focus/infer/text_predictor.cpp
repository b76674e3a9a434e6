// Text classification inference (see text_predictor.hpp).
#include "focus/infer/text_predictor.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/text_fast.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"
#include "focus/text/labelled.hpp"
#include "focus/text/strings.hpp"

namespace focus {

TextPredictor::TextPredictor(LoadedClassifier lm, bool calibrated)
    : model_(std::move(lm.model)), info_(std::move(lm.info)) {
  text_ = dynamic_cast<TextTransformer*>(model_.get());
  FOCUS_CHECK(text_ != nullptr, FormatError, "TextPredictor: the file holds a {} model of {} input, not a text model",
              model_->name(), model_->input_kind());
  tok_ = tokenizer_from_json(nlohmann::json::parse(info_.tokenizer));
  max_len_ = text_->cfg().input_len();
  temperature_ = calibrated ? info_.temperature : 1.0;
  model_->eval();
  fast_ = TextFastPath::build(*text_);
}

TextPredictor::~TextPredictor() = default;
TextPredictor::TextPredictor(TextPredictor&&) noexcept = default;

TextPredictor TextPredictor::load(const std::string& path, bool calibrated) {
  return TextPredictor(load_classifier(path), calibrated);
}

Tensor TextPredictor::encode(const std::vector<std::string>& texts,
                             std::vector<std::vector<int64_t>>* ids) const {
  std::vector<std::vector<int64_t>> rows;
  for (size_t i = 0; i < texts.size(); ++i) {
    FOCUS_CHECK(is_valid_utf8(texts[i]), ValueError, "text {} is not valid UTF-8", i);
    rows.push_back(encode_for_classification(*tok_, texts[i], max_len_));
  }
  std::vector<const std::vector<int64_t>*> ptrs;
  for (const auto& r : rows) ptrs.push_back(&r);
  Tensor x = pad_token_rows(ptrs);  // (N, L)
  if (ids) *ids = std::move(rows);
  return x;
}

Tensor TextPredictor::logits(const std::vector<std::string>& texts) const {
  FOCUS_CHECK(!texts.empty(), ValueError, "TextPredictor: no text");
  return logits_ids(encode(texts, nullptr));  // (N, K)
}

Tensor TextPredictor::logits_ids(const Tensor& ids) const {
  NoGradGuard no_grad;
  ScopedThreads threads(inference_threads(ids.dim() == 2 ? ids.size(0) : 1));
  if (path() == TextPath::Fast) return fast_->logits(ids);  // (N, K)
  return model_->forward(ids);                               // (N, K)
}

std::vector<TextPrediction> TextPredictor::predict(const std::vector<std::string>& texts) const {
  if (texts.empty()) return {};
  NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> ids;
  const Tensor x = encode(texts, &ids);  // (N, L)
  ScopedThreads threads(inference_threads(x.size(0)));
  Tensor z, w;  // (N, K) logits, (N, L') pooling weights over the encoder's L' = min(L, max_len)
  if (path() == TextPath::Fast) {
    z = fast_->logits(x, &w);
  } else {
    ForwardTrace trace;
    z = model_->forward_traced(x, trace);
    const Tensor& w4 = trace.attention.back();  // (N, H, 1, L)
    w = mean(reshape(w4, {w4.size(0), w4.size(1), w4.size(3)}), {1});
  }
  z = z.to(DType::F64).contiguous();
  w = w.to(DType::F64).contiguous();
  const int64_t K = z.size(1), Lw = w.size(1);
  const double* zp = z.data<double>();
  const double* wp = w.data<double>();
  std::vector<TextPrediction> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    TextPrediction& p = out[i];
    double mx = -INFINITY, s = 0;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, zp[i * K + k] / temperature_);
    for (int64_t k = 0; k < K; ++k) s += p.probs.emplace_back(std::exp(zp[i * K + k] / temperature_ - mx));
    for (double& v : p.probs) v /= s;
    p.label = int64_t(std::max_element(p.probs.begin(), p.probs.end()) - p.probs.begin());
    for (size_t t = 0; t < ids[i].size(); ++t) {
      p.tokens.push_back(tok_->vocab().token(ids[i][t]));
      p.pooling.push_back(int64_t(t) < Lw ? wp[int64_t(i) * Lw + int64_t(t)] : 0.0);  // 0 past the encoder
    }
  }
  return out;
}

}  // namespace focus
