// Linear (y = x W^T + b) and Embedding (a lookup table) layers. Parameter names as torch.
// Members are handles on the registered parameters: write into them in place, never reassign.
#pragma once
#include <memory>

#include "focus/kernels/qgemm.hpp"
#include "focus/nn/module.hpp"
#include "focus/ops/matmul.hpp"

namespace focus {

class Rng;

// A weight's inference copies (Module::set_inference_dtype): BF16 keeps the weight rounded to
// bf16, packed in panels for few-row products, and its F32 widening for many rows; I8 keeps it
// quantised per output channel and packed for the int8 GEMM (every row count).
struct InferenceWeights {
  PackedWeight packed;  // undefined when off
  Tensor widened;       // the weight's shape, or undefined
  std::shared_ptr<const QWeight> int8;  // null when off
  void set(const Tensor& weight, DType dtype);  // F32 (or a non-F32 weight): none
  // x @ weight^T + bias: the weight itself with grad enabled or without copies; else the int8
  // weight, or the packed bf16 panels for up to kPackedRows rows (the product streams the
  // weight), the widening (the same values) through the GEMM for more.
  Tensor forward(const Tensor& weight, const Tensor& x, const Tensor& bias) const;
};

class Linear : public Module {
 public:
  // weight (OUT, IN) and bias (OUT) uniform in +-1/sqrt(IN), as torch.nn.Linear.
  Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias = true);
  // (..., IN) -> (..., OUT); under NoGradGuard through the inference weights when they are set
  // (bf16 panels for up to kPackedRows rows, their F32 widening for more: the same values).
  Tensor forward(const Tensor& x) const;
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  bool int8_active() const { return inference_.int8 != nullptr; }  // set_inference_dtype(I8)

  const Tensor weight;  // (OUT, IN)
  const Tensor bias;    // (OUT), undefined without bias

 protected:
  void on_inference_dtype(DType dtype) override;

 private:
  InferenceWeights inference_;
};

class Embedding : public Module {
 public:
  // weight (V, D) ~ N(0, 1), as torch.nn.Embedding.
  Embedding(int64_t num_embeddings, int64_t dim, Rng& rng);
  Tensor forward(const Tensor& indices) const;  // I64 (...) -> (..., D)
  // The tied output projection h (..., D) @ weight^T -> logits (..., V); under NoGradGuard through
  // the inference weights when they are set, as Linear::forward. Only a table marked as a
  // projection gets them (a lookup-only table would carry an unused copy).
  Tensor project(const Tensor& h) const;
  void mark_projection() { projection_ = true; }

  const Tensor weight;  // (V, D)

 protected:
  void on_inference_dtype(DType dtype) override;

 private:
  bool projection_ = false;
  InferenceWeights inference_;
};

}  // namespace focus
