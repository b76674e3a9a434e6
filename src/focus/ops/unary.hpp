// Differentiable pointwise functions. F32 and F64.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor relu(const Tensor& a);
// GELU; exact (erf) form as torch.nn.GELU() by default, tanh approximation if `tanh_approx`.
Tensor gelu(const Tensor& a, bool tanh_approx = false);
Tensor square(const Tensor& a);
Tensor pow(const Tensor& a, double p);
Tensor abs(const Tensor& a);

}  // namespace focus
