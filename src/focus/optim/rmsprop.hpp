// RMSprop, following torch.optim.RMSprop of PyTorch 1.13 operation by operation (scalars rounded
// to the parameter's dtype):
//   d = g + wd * p                                       (if wd != 0)
//   sq = sq * alpha + (1 - alpha) * d * d
//   centered: ga = ga * alpha + (1 - alpha) * d;  avg = sqrt(sq + (-1) * ga * ga) + eps
//   else:     avg = sqrt(sq) + eps
//   momentum > 0: buf = buf * momentum + d / avg;  p = p + (-lr) * buf
//   else:         p = p + (-lr) * d / avg
// State: "square_avg", then "momentum_buffer" (momentum > 0), then "grad_avg" (centered).
#pragma once
#include "focus/optim/optimizer.hpp"

namespace focus {

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

class RMSprop : public Optimizer {
 public:
  // ValueError for a negative lr, alpha, eps, weight_decay or momentum (as torch).
  RMSprop(NamedTensors params, const RMSpropOptions& opt);
  const char* name() const override { return "RMSprop"; }
  const RMSpropOptions& options() const { return opt_; }

 protected:
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
              int64_t step) override;

 private:
  RMSpropOptions opt_;
};

}  // namespace focus
