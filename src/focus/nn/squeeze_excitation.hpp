// Squeeze-and-Excitation (Hu et al.): per-channel gates from globally pooled features,
//   s = sigmoid(fc2(relu(fc1(global_avg_pool(x))))),  y = x * s[:, :, None, None].
//   Letters: N batch, C channels, R = max(1, C / reduction) hidden units.
#pragma once
#include <memory>

#include "focus/nn/linear.hpp"

namespace focus {

class SqueezeExcitation : public Module {
 public:
  SqueezeExcitation(int64_t channels, int64_t reduction, Rng& rng);
  // (N, C, H, W) -> same; gates_out, if given, receives the gates s (N, C).
  Tensor forward(const Tensor& x, Tensor* gates_out = nullptr) const;

  const std::shared_ptr<Linear> fc1, fc2;  // C -> R, R -> C
};

}  // namespace focus
