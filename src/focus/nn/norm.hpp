// LayerNorm (over the last dim) and BatchNorm2d (per channel of NCHW) layers; parameter and
// buffer names as torch (BatchNorm2d has no num_batches_tracked: momentum is always used).
#pragma once
#include "focus/nn/module.hpp"

namespace focus {

class LayerNorm : public Module {
 public:
  // weight ones, bias zeros (D); no parameters when !affine.
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) const;  // (..., D) -> (..., D)

  const Tensor weight, bias;  // (D) each, undefined when !affine
  const double eps;
};

class BatchNorm2d : public Module {
 public:
  // weight ones, bias zeros, running_mean zeros, running_var ones (C).
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  // (N, C, H, W) -> same. Training: batch statistics, running statistics updated in place;
  // eval: running statistics.
  Tensor forward(const Tensor& x);

  const Tensor weight, bias, running_mean, running_var;  // (C) each
  const double eps, momentum;
};

}  // namespace focus
