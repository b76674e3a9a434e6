// Gradients of intermediate (non-leaf) tensors, as PyTorch's Tensor.retain_grad: explanations
// need d(logit)/d(attention map) and d(logit)/d(feature map), which backward otherwise passes
// through without keeping. Registrations are per thread and hold nothing alive: a tensor or
// graph that dies drops out.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

// After this, a backward on this thread that runs through t's grad_fn also stores d(root)/d(t)
// into t.grad() (accumulating over backwards, like a leaf). A leaf: nothing to do (leaves keep
// their gradient anyway). t must require grad (StateError otherwise).
void retain_grad(const Tensor& t);

}  // namespace focus
