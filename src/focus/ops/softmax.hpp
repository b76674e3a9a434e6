// Numerically stable softmax and log-softmax along one dim (max-subtracted). F32 and F64.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);

}  // namespace focus
