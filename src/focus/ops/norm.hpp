// Normalisation ops with fused forward/backward kernels.
//   layer_norm: x (..., C) normalised over the last dim; weight/bias (C) optional (undefined).
//     Forward saves mean and rstd per row for the backward.
//   batch_norm: x (N, C, ...) per-channel; in training uses batch statistics and updates
//     running_mean/running_var in place (momentum as in torch: new = (1-m)*old + m*batch, the
//     running variance unbiased); in eval uses the running statistics.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor batch_norm(const Tensor& x, Tensor& running_mean, Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

}  // namespace focus
