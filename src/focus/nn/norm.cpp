// LayerNorm and BatchNorm2d layers (see norm.hpp).
#include "focus/nn/norm.hpp"

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

}  // namespace focus
