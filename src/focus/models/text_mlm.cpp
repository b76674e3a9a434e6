// text-mlm model (see text_mlm.hpp).
#include "focus/models/text_mlm.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/nn/layers.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/unary.hpp"
#include "focus/ops/view.hpp"

namespace focus {

TextMlm::TextMlm(const TextTransformerConfig& cfg, Rng& rng) : TextEncoderModel(cfg, rng) {
  FOCUS_CHECK(cfg.ngram_buckets == 0, ValueError,
              "text_mlm: ngram_buckets {}: the n-gram branch belongs to the classifier "
              "(text_transformer), not to the masked-token model", cfg.ngram_buckets);
  dense_ = register_module("mlm_dense", std::make_shared<Linear>(cfg.dim, cfg.dim, rng));
  norm_ = register_module("mlm_norm", std::make_shared<LayerNorm>(cfg.dim));
  bias_ = register_parameter("mlm_bias", Tensor::zeros({cfg.vocab_size}));
}

Tensor TextMlm::head(const Tensor& h) {
  const Tensor t = norm_->forward(gelu(dense_->forward(h)));  // (..., D)
  // The table's rows are N(0, 1) (the classifier's input embedding): 1/sqrt(D) keeps the initial
  // logits at unit scale (unscaled, the first loss is ~3x log V).
  return add(mul(token_embedding().project(t), 1.0 / std::sqrt(double(cfg_.dim))), bias_);  // (..., V)
}

Tensor TextMlm::forward(const Tensor& ids) {
  AttentionMask am;
  return head(run_encoder(ids, am, nullptr));  // (N, L, V)
}

std::pair<Tensor, Tensor> TextMlm::forward_scored(const Tensor& ids, const Tensor& targets) {
  FOCUS_CHECK(targets.dtype() == DType::I64 && targets.shape() == ids.shape(), ShapeError,
              "text_mlm: targets {} {} must be I64 of the ids' shape {}",
              to_string(targets.shape()), dtype_name(targets.dtype()), to_string(ids.shape()));
  AttentionMask am;
  const Tensor h = run_encoder(ids, am, nullptr);  // (N, L, D)
  const int64_t N = ids.size(0), L = ids.size(1), D = h.size(2);
  const Tensor tc = targets.contiguous();
  const int64_t* t = tc.data<int64_t>();
  std::vector<int64_t> pos, tgt;
  for (int64_t i = 0; i < N * L; ++i)
    if (t[i] != kIgnore) {
      FOCUS_CHECK(t[i] >= 0 && t[i] < cfg_.vocab_size, ValueError,
                  "text_mlm: target {} at row {}, position {} not in [0, {})", t[i], i / L, i % L,
                  cfg_.vocab_size);
      pos.push_back(i);
      tgt.push_back(t[i]);
    }
  FOCUS_CHECK(!pos.empty(), ValueError, "text_mlm: no position to predict in the batch");
  const int64_t M = int64_t(pos.size());
  const Tensor idx = Tensor::from_vector(pos, {M});
  const Tensor picked = index_select(reshape(h, {N * L, D}), 0, idx);  // (M, D)
  return {head(picked), Tensor::from_vector(tgt, {M})};                 // (M, V), (M)
}

nlohmann::json TextMlm::config() const { return cfg_.to_json(); }

}  // namespace focus
