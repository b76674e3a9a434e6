// SGD with momentum, dampening, Nesterov and (L2) weight decay, following torch.optim.SGD of
// PyTorch 1.13 operation by operation (scalars rounded to the parameter's dtype):
//   d = g + wd * p                                   (if wd != 0)
//   buf = d at the first update, else buf = buf * momentum + (1 - dampening) * d   (momentum != 0)
//   d = nesterov ? d + momentum * buf : buf          (momentum != 0)
//   p = p + (-lr) * d
// State: "momentum_buffer" when momentum != 0, none otherwise.
#pragma once
#include "focus/optim/optimizer.hpp"

namespace focus {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  // ValueError for a negative lr / momentum / weight decay, or Nesterov without momentum or with
  // dampening (as torch).
  SGD(NamedTensors params, const SGDOptions& opt);
  const char* name() const override { return "SGD"; }
  const SGDOptions& options() const { return opt_; }

 protected:
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
              int64_t step) override;

 private:
  SGDOptions opt_;
};

}  // namespace focus
