// Adam and AdamW, following torch.optim.Adam / AdamW of PyTorch 1.13 (single-tensor path, no
// amsgrad) operation by operation, scalars computed in double and rounded to the parameter's
// dtype. With t the parameter's update count:
//   Adam:  d = g + wd * p (if wd != 0)          AdamW: p = p * (1 - lr * wd); d = g
//   m = m * beta1 + (1 - beta1) * d
//   v = v * beta2 + (1 - beta2) * d * d
//   step_size = lr / (1 - beta1^t);  denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p + (-step_size) * m / denom
// State: "exp_avg" (m), "exp_avg_sq" (v).
#pragma once
#include "focus/optim/optimizer.hpp"

namespace focus {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled
};

class Adam : public Optimizer {
 public:
  // ValueError for lr < 0, eps < 0, a beta outside [0, 1) or weight_decay < 0 (as torch).
  Adam(NamedTensors params, const AdamOptions& opt);
  const char* name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(NamedTensors params, const AdamOptions& opt, bool decoupled);
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
              int64_t step) override;

 private:
  AdamOptions opt_;
  bool decoupled_;
};

// AdamW: torch's defaults differ from Adam's only in weight_decay (1e-2).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

class AdamW : public Adam {
 public:
  AdamW(NamedTensors params, const AdamWOptions& o)
      : Adam(std::move(params), AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}, true) {}
};

}  // namespace focus
