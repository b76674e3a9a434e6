// Matrix products on top of kernels/gemm. Transposed views are passed to the GEMM as transposes
// (no copy); batch dims broadcast; batches of small products run in parallel over the batch.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

// a (..., M, K) @ b (..., K, N) -> (..., M, N); a 1-D operand is treated like torch.matmul.
Tensor matmul(const Tensor& a, const Tensor& b);
// x (..., IN) @ w (OUT, IN)^T + bias (OUT) -> (..., OUT); bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());

}  // namespace focus
