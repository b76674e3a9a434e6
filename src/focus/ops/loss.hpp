// Losses (mean over the batch). cross_entropy targets are never differentiated; bce_with_logits
// and mse_loss differentiate both operands, as torch does.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

// logits (N, C), targets I64 (N) in [0, C) or == ignore_index; label smoothing as in
// torch.nn.CrossEntropyLoss(label_smoothing=...). Mean over non-ignored rows. Scalar output.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, double label_smoothing = 0.0,
                     int64_t ignore_index = -100);
// x and y same shape, y in [0, 1]; mean of the stable BCE-with-logits.
Tensor bce_with_logits(const Tensor& x, const Tensor& y);
// mean((x - y)^2)
Tensor mse_loss(const Tensor& x, const Tensor& y);

}  // namespace focus
