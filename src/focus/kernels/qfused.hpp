// Fused int8 row pipelines for transformer inference (the int8 vit plan, infer/vit_plan.hpp), on
// the int8 GEMM of kernels/qgemm.hpp. Each runs over blocks of rows small enough that everything
// between two reads of the activations stays in cache: per block, the prologue (an optional
// LayerNorm) writes F32 rows to per-thread scratch, they are quantised per row, multiplied by the
// int8 weight, and the epilogue (dequantisation, bias, optional GELU) writes or adds the result.
// So a pre-norm transformer block's Linear costs one pass over its input and one over its output,
// instead of LayerNorm, quantisation, product, dequantisation, GELU and the residual add each
// reading and writing the whole activation tensor.
//   qlinear_fused: y (M, N) = or += ep(dequant(q(LN(x)) @ W^T) + bias)
//   qmlp_residual: h (M, D) += W2 q(gelu(W1 q(LN(h)) + b1)) + b2: both linears of a feed-forward,
//                  its (rows, F) hidden layer never written out
// The numbers are those of the unfused composition (layer_norm_forward, then qlinear_forward,
// unary_forward(Gelu), add): the same quantiser of w.path and the same kernels on the same F32
// rows, except that the VNNI path normalises and quantises a row in registers
// (quantize_rows_layer_norm_for: the same formula, its sums in another order, so a value on a
// rounding edge may land one step away); tests/kernels/qfused_test.cpp checks it against that
// composition and against a double product. Rows split over the thread policy's threads when the
// product is large and the caller is not inside a parallel region.
#pragma once
#include <cstdint>

#include "focus/kernels/qgemm.hpp"

namespace focus {

// A LayerNorm applied to each row before quantisation: weight and bias (K) (both null: no norm).
struct RowNorm {
  const float* weight = nullptr;
  const float* bias = nullptr;
  float eps = 1e-5f;
};

// y (M, w.N) row stride ldy <- x (M, w.K) row stride ldx; bias (w.N) or null; ep None or Gelu
// (the erf form, computed as unary_forward(Gelu)) or Relu; accumulate: y += instead of y =.
void qlinear_fused(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t M, const QWeight& w,
                   const float* bias, QEpilogue ep, const RowNorm& norm, bool accumulate);

// h (M, D) row stride ldh += linear2(gelu(linear1(LN(h)))): w1 (F, D), w2 (D, F), biases or null.
// ValueError when the shapes do not chain (w1.K != w2.N or w1.N != w2.K).
void qmlp_residual(float* h, int64_t ldh, int64_t M, const RowNorm& norm, const QWeight& w1,
                   const float* b1, const QWeight& w2, const float* b2);

}  // namespace focus
