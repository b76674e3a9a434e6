// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ (norm_type 2) of
// PyTorch 1.13: total = sqrt(sum over all grads of |g|^2); if max_norm / (total + 1e-6) < 1 every
// gradient is scaled in place by that factor. Parameters without a gradient are skipped.
// Differences from torch: the norm is accumulated in double (torch reduces F32 grads in float),
// in fixed-size blocks so the result does not depend on the thread count. A non-finite norm is
// returned as is and the gradients are scaled by the resulting factor (torch's default).
#pragma once
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

// Returns the total norm before clipping (0 when no parameter has a gradient).
// ValueError if max_norm is negative or NaN.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// The global L2 norm of the parameters' gradients, without changing them.
double grad_norm(const std::vector<Tensor>& params);

}  // namespace focus
