// Optimizer: the base of SGD, Adam, AdamW and RMSprop. It holds named parameters and, per
// parameter, an update count and the optimizer's state tensors ("slots": exp_avg, ...), created
// as zeros (the parameter's dtype and shape) at the parameter's first update, as torch does.
// step() skips parameters whose grad is undefined (their count does not advance either).
// State dicts are flat so checkpoints can store them in safetensors: "<param>.<slot>" per slot,
// "<param>.step" (I64 scalar) per updated parameter, and "step" (I64 scalar, step() calls).
// The update loops reproduce torch.optim (PyTorch 1.13) bit for bit on FMA-capable builds (see
// torch_ops.hpp and tests/optim/torch_reference_test.cpp); they vectorise and run on all threads
// for large parameters, with results independent of the thread count.
// Limits: parameters must be contiguous F32/F64 leaves; one learning rate for all parameters.
#pragma once
#include <string>
#include <vector>

#include "focus/nn/module.hpp"

namespace focus {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual const char* name() const = 0;
  void step();       // one update of every parameter that has a gradient
  void zero_grad();  // drops the gradients (the next backward writes fresh ones)
  double lr() const { return lr_; }
  void set_lr(double lr);  // ValueError unless finite and >= 0
  int64_t steps() const { return steps_; }  // step() calls so far
  const NamedTensors& params() const { return params_; }
  const std::vector<std::string>& slot_names() const { return slot_names_; }

  // The state tensors are shared, not copied (save them before the next step()).
  StateDict state_dict() const;
  // Replaces the whole state with copies of `sd`'s tensors (converted to each parameter's dtype).
  // Throws FormatError naming a missing or unexpected key, ShapeError naming a slot whose shape
  // differs from its parameter, ValueError for a negative or non-integral step count. On a throw
  // the optimizer is unchanged.
  void load_state_dict(const StateDict& sd);

 protected:
  // Validates the parameters: defined, F32/F64, contiguous, unique non-empty names (ValueError).
  Optimizer(NamedTensors params, double lr, std::vector<std::string> slot_names);
  // Updates `param` in place from `grad` (same shape and dtype, contiguous). `slots` follow
  // slot_names() (contiguous, the parameter's dtype); `step` counts this parameter's updates,
  // this one included (1 on the first).
  virtual void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
                      int64_t step) = 0;

 private:
  struct ParamState {
    int64_t step = 0;  // 0: never updated, slots undefined
    std::vector<Tensor> slots;
  };
  NamedTensors params_;
  std::vector<std::string> slot_names_;
  std::vector<ParamState> state_;
  double lr_;
  int64_t steps_ = 0;
};

// Elements above which the fused update loops run on all threads. The loops say
// `if (parallel : n > kOptimParallelMin)`: a bare `if` on `parallel for simd` would also turn
// SIMD off below the threshold.
constexpr int64_t kOptimParallelMin = 32768;

}  // namespace focus
