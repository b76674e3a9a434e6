// Matrix products on top of kernels/gemm. Transposed views are passed to the GEMM as transposes
// (no copy); batch dims broadcast; batches of small products run in parallel over the batch.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

// a (..., M, K) @ b (..., K, N) -> (..., M, N); a 1-D operand is treated like torch.matmul.
Tensor matmul(const Tensor& a, const Tensor& b);
// x (..., IN) @ w (OUT, IN)^T + bias (OUT) -> (..., OUT); bias may be undefined. w may be BF16
// (inference weights, Module::set_inference_dtype) with x and bias F32: no graph (DTypeError if
// one is needed); up to kBf16RowDotRows rows run as row dots on the bf16 weight, more widen it to
// F32 on every call and take the GEMM (Linear keeps a widened copy instead).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());
// Rows at or below which a BF16 weight pays: the product streams the weight (decoding); above,
// it is compute-bound and the F32 GEMM on the widened weight is faster.
inline constexpr int64_t kBf16RowDotRows = 16;

}  // namespace focus
