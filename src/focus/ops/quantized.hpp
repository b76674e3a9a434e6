// int8 inference ops (kernels/qgemm.hpp, qconv.hpp): a Linear or a convolution whose weight was
// quantised per output channel and packed once (Module::set_inference_dtype(I8) makes the
// QWeight), with the input quantised per row on every call. Inference only: no graph is recorded
// and an input or bias that needs a gradient is refused (DTypeError), as are non-F32 inputs.
#pragma once
#include "focus/kernels/qgemm.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus {

// x (..., IN) -> (..., OUT) = dequant(q(x) @ w^T) + bias; w packed from (OUT, IN).
Tensor linear_int8(const Tensor& x, const QWeight& w, const Tensor& bias);
// x (N, C, H, W) -> (N, O, OH, OW), square kernel `kernel`, w packed from (O, C*kernel*kernel).
// out_scale (O) or undefined: y = out_scale[o] * conv + bias[o]; relu: max(y, 0) (an eval-mode
// batch norm and ReLU folded in, nn/conv.hpp Conv2d::forward_bn).
Tensor conv2d_int8(const Tensor& x, const QWeight& w, const Tensor& bias, int64_t kernel,
                   int64_t stride, int64_t padding, const Tensor& out_scale = Tensor(),
                   bool relu = false);

}  // namespace focus
