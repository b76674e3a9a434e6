// Module: the base of every layer and model. It owns named parameters (leaves requiring grad),
// named buffers (state without gradients, e.g. batch-norm running statistics) and child modules,
// and gives hierarchical names ("blocks.0.attn.q_proj.weight"), train/eval mode and state dicts.
// Forward signatures differ per module, so forward() is not virtual here.
// Tensors are handles: a registered tensor is shared with the member it came from, and
// load_state_dict() copies values into it in place, so members stay valid.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

class Rng;

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;  // registration order, children after own
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  // The buffers training writes (batch-norm statistics), without the fixed ones (data fitted
  // before training: register_fixed_buffer): what data-parallel replicas must keep in step.
  NamedTensors named_updated_buffers() const;
  StateDict state_dict() const;  // parameters and buffers
  // Copies every entry into the module's tensors. Throws FormatError naming a missing or
  // unexpected tensor (strict) and ShapeError naming a tensor whose shape differs.
  void load_state_dict(const StateDict& sd, bool strict = true);
  int64_t num_parameters() const;
  // Random streams owned by the modules (dropout masks), by hierarchical name: a checkpoint saves
  // and restores their (seed, offset) so a resumed run draws the same masks.
  std::vector<std::pair<std::string, Rng*>> named_rngs() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Converts every F32/F64 parameter and buffer to `dtype` (F32 or F64) in place: the tensors keep
  // their identity (members and the optimiser's handles stay valid), their gradients are dropped.
  // Gradient checks use to(DType::F64).
  void to(DType dtype);
  // Inference weights. BF16: every Linear weight and tied output projection (Embedding::project)
  // gets a bf16 copy that forward() uses under NoGradGuard (half the bytes decoding streams per
  // token; results within bf16 rounding of the F32 ones); with grad enabled the F32 weights run.
  // I8: every Linear weight and tied output projection, and every Conv2d weight, gets an int8 copy
  // (per-output-channel scales, packed for the int8 GEMM, kernels/qgemm.hpp) that forward() uses
  // under NoGradGuard, the inputs quantised per row on each call (ops/quantized.hpp).
  // F32 drops the copies. They are copies of the weights now: load_state_dict(), to() and
  // train(true) drop them; writes into the weights in place (an optimizer step, the trainer's
  // EMA swap) do not, so set them after training.
  void set_inference_dtype(DType dtype);
  // Every module below this one by hierarchical name ("stages.0.conv1"), parents before children,
  // this one excluded. The pointers live as long as this module.
  std::vector<std::pair<std::string, Module*>> named_modules() const;

 protected:
  // The per-module part of set_inference_dtype (children are visited by the caller).
  virtual void on_inference_dtype(DType) {}
  // Registers a leaf parameter (marked requires_grad) and returns it for the member to keep.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  // A buffer no training step writes (set before training, e.g. fitted ratios or a frozen table):
  // saved and loaded as any buffer, left out of named_updated_buffers.
  Tensor register_fixed_buffer(const std::string& name, Tensor t);
  // Registers a random stream that lives as long as the module (a member).
  void register_rng(const std::string& name, Rng* rng) { rngs_.emplace_back(name, rng); }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out, bool buffers, bool updated_only = false) const;
  NamedTensors params_, buffers_;
  std::set<std::string> fixed_;  // names of this module's fixed buffers
  std::vector<std::pair<std::string, Rng*>> rngs_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace focus
