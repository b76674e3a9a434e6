// LayerNorm (over the last dim) and BatchNorm2d (per channel of NCHW) layers; parameter and
// buffer names as torch (BatchNorm2d has no num_batches_tracked: momentum is always used).
#pragma once
#include <vector>

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

// Eval-mode batch norm after a convolution with bias b0 (empty: none), per channel o, as one affine
// map of the convolution's bias-free output z: bn(z + b0) = scale[o] * z + shift[o], with scale =
// gamma / sqrt(var + eps) and shift = beta + scale * (b0 - mean). What every folded convolution
// (nn/conv's int8 path, the compiled plans of infer/) multiplies and adds.
struct BatchNormFold {
  std::vector<float> scale, shift;  // (C) each
};
BatchNormFold fold_batch_norm(const std::vector<float>& gamma, const std::vector<float>& beta,
                              const std::vector<float>& mean, const std::vector<float>& var,
                              float eps, const std::vector<float>& b0 = {});

}  // namespace focus
