// The fast inference path of text-transformer (models/text_transformer.hpp): the same forward in
// eval mode (no dropout, no autograd graph) written straight on the kernels over a workspace the
// path keeps between calls, so a request allocates only its logits:
//   h = tok_embed[ids] + pos[:L]; per block: LayerNorm -> one fused QKV GEMM (weights
//   concatenated once) -> fused attention (kernels/attention.hpp) reading Q/K/V in place through
//   strides (no head transposes) with the padding mask -> out_proj GEMM accumulated into h ->
//   LayerNorm -> linear1 + GELU -> linear2 accumulated into h; final LayerNorm; pooling: the
//   query projected once per call, K/V of the tokens in one GEMM, fused attention of one query,
//   out_proj, head; with the n-gram branch, its weighted sum of the n-grams' table rows added to
//   the logits (models/text_ngram.hpp text_ngram_features), over the whole row when the model
//   takes rows longer than the encoder's max_len (ngram_len).
// It gives the model's forward() logits up to float rounding (tests/infer/text_fast_test.cpp:
// within 1e-4 + 1e-4 |x| at several lengths and batch sizes, padded or not). The reference path
// (the model's forward through ops and layers) stays selectable: TextPredictor::set_path.
// Weights are copied (fused QKV, K/V of the pooling) or shared with the model at build time: a
// later in-place change to the model's weights needs a new TextFastPath. Calls from several
// threads serialise on the workspace (a mutex).
//   Letters: N batch, L tokens, D = dim, H heads, Dh = D / H, F = MLP width, K classes.
#pragma once
#include <memory>
#include <mutex>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

class TextTransformer;

class TextFastPath {
 public:
  // nullptr when the model is outside what this path runs (a parameter not F32, pruned heads);
  // the caller then keeps the reference path.
  static std::unique_ptr<TextFastPath> build(const TextTransformer& model);
  // ids (N, L) I64 right-padded with 0 -> logits (N, K) F32. The model's checks, the same
  // messages: ShapeError for a bad shape or L outside [1, input_len], ValueError for an id outside
  // [0, vocab) or a row of only padding. pooling (optional) receives the pooling weights averaged
  // over heads, (N, min(L, max_len)) F32, 0 on padding (TextTransformer::pooling_weights), recomputed from the
  // fused attention's log-sum-exp (kernels/attention.hpp attention_probs).
  Tensor logits(const Tensor& ids, Tensor* pooling = nullptr) const;

 private:
  struct Block {
    Tensor ln1_w, ln1_b, ln2_w, ln2_b;  // (D)
    std::vector<float> wqkv, bqkv;      // (3D, D), (3D): q, k, v stacked
    Tensor wo, bo, w1, b1, w2, b2;      // (D, D), (D), (F, D), (F), (D, F), (D)
  };
  TextFastPath() = default;
  int64_t V_ = 0, Lmax_ = 0, D_ = 0, H_ = 0, F_ = 0, K_ = 0;
  Tensor tok_, pos_, norm_w_, norm_b_;  // (V, D), (Lmax, D), (D), (D)
  std::vector<Block> blocks_;
  Tensor pool_query_, pool_wq_, pool_bq_, pool_wo_, pool_bo_, head_w_, head_b_;
  std::vector<float> pool_wkv_, pool_bkv_;  // (2D, D), (2D): k, v stacked
  Tensor ngram_;                            // (buckets, K); undefined without the n-gram branch
  int64_t ngram_order_ = 0;
  double ngram_scale_ = 1;
  std::vector<float> ngram_idf_;  // (buckets) with TF-IDF weights; empty otherwise
  int64_t ngram_boundary_ = -1;   // word-bounded n-grams (models/text_ngram.hpp)
  int64_t Lin_ = 0;               // the ids a row may hold (input_len); the encoder reads Lmax_
  // Workspace, grown to the largest batch seen.
  mutable std::vector<float> h_, t_, qkv_, o_, f_, g_, mean_, rstd_, lse_, q1_, pooled_, pooled2_, probs_;
  mutable std::vector<uint8_t> pad_;
  mutable std::vector<int64_t> ngram_bucket_;
  mutable std::vector<double> ngram_weight_;
  mutable std::mutex mu_;  // guards the workspace
};

}  // namespace focus
