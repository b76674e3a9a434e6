// Matrix products on top of kernels/gemm. Transposed views are passed to the GEMM as transposes
// (no copy); batch dims broadcast; batches of small products run in parallel over the batch.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

// a (..., M, K) @ b (..., K, N) -> (..., M, N); a 1-D operand is treated like torch.matmul.
Tensor matmul(const Tensor& a, const Tensor& b);
// x (..., IN) @ w (OUT, IN)^T + bias (OUT) -> (..., OUT); bias may be undefined. w may be BF16
// with x and bias F32: inference only (DTypeError if a graph is needed), a convenience that packs
// (up to kPackedRows rows) or widens the weight on every call; keep a PackedWeight instead.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());

// A Linear weight packed once for few-row inference products (kernels/panel_gemm.hpp): panels of
// 16 output rows, the values in F32 or rounded to BF16. Module::set_inference_dtype makes them.
struct PackedWeight {
  Tensor panels;  // (ceil(OUT / 16), IN, 16), F32 or BF16
  int64_t out = 0, in = 0;
  bool defined() const { return panels.defined(); }
};
// Packs an F32 (OUT, IN) weight; dtype F32 or BF16 (DTypeError otherwise).
PackedWeight pack_weight(const Tensor& w, DType dtype);
// x (..., IN) F32 @ w^T + bias (OUT, F32): no graph (DTypeError if x or bias needs one). Meant for
// up to kPackedRows rows; any count is computed correctly.
Tensor linear(const Tensor& x, const PackedWeight& w, const Tensor& bias = Tensor());
// Rows at or below which a packed weight pays: the product streams the weight (decoding); above,
// it is compute-bound and the F32 GEMM (on a widened BF16 weight) is faster.
inline constexpr int64_t kPackedRows = 16;

}  // namespace focus
