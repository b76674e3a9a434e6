// LayerNorm and BatchNorm2d layers (see norm.hpp).
#include "focus/nn/norm.hpp"

#include <cmath>

#include "focus/nn/init.hpp"
#include "focus/ops/norm.hpp"

namespace focus {

LayerNorm::LayerNorm(int64_t dim, double eps_, bool affine)
    : weight(affine ? register_parameter("weight",
                                         Tensor::ones({init::positive(dim, "LayerNorm: dim")}))
                    : Tensor()),
      bias(affine ? register_parameter("bias", Tensor::zeros({dim})) : Tensor()),
      eps(eps_) {
  init::positive(dim, "LayerNorm: dim");
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

BatchNorm2d::BatchNorm2d(int64_t channels, double eps_, double momentum_)
    : weight(register_parameter("weight",
                                Tensor::ones({init::positive(channels, "BatchNorm2d: channels")}))),
      bias(register_parameter("bias", Tensor::zeros({channels}))),
      running_mean(register_buffer("running_mean", Tensor::zeros({channels}))),
      running_var(register_buffer("running_var", Tensor::ones({channels}))),
      eps(eps_),
      momentum(momentum_) {}

Tensor BatchNorm2d::forward(const Tensor& x) {
  FOCUS_CHECK(x.dim() == 4 && x.size(1) == weight.size(0), ShapeError,
              "BatchNorm2d: input {} must be (N, {}, H, W)", to_string(x.shape()), weight.size(0));
  Tensor rm = running_mean, rv = running_var;  // updated in place in training
  return batch_norm(x, rm, rv, weight, bias, is_training(), momentum, eps);
}

BatchNormFold fold_batch_norm(const std::vector<float>& gamma, const std::vector<float>& beta,
                              const std::vector<float>& mean, const std::vector<float>& var,
                              float eps, const std::vector<float>& b0) {
  const size_t C = gamma.size();
  FOCUS_CHECK(beta.size() == C && mean.size() == C && var.size() == C && (b0.empty() || b0.size() == C),
              ShapeError, "fold_batch_norm: {} channels, but beta {}, mean {}, var {}, bias {}", C,
              beta.size(), mean.size(), var.size(), b0.size());
  BatchNormFold f{std::vector<float>(C), std::vector<float>(C)};
  for (size_t o = 0; o < C; ++o) {
    f.scale[o] = gamma[o] / std::sqrt(var[o] + eps);
    f.shift[o] = beta[o] + f.scale[o] * ((b0.empty() ? 0.0f : b0[o]) - mean[o]);
  }
  return f;
}

}  // namespace focus
