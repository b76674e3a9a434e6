// Convolution and pooling on NCHW tensors. conv2d lowers to im2col + GEMM (kernels/gemm).
//   x (N, C, H, W), w (O, C/groups... groups=1 only) (O, C, KH, KW), bias (O) optional.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride = 1,
              int64_t padding = 0);
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1, int64_t padding = 0);
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1, int64_t padding = 0);
// (N, C, H, W) -> (N, C)
Tensor global_avg_pool2d(const Tensor& x);

}  // namespace focus
