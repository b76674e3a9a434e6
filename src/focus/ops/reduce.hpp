// Differentiable reductions over one or more dims (negative dims count from the end; an empty
// dims list means all dims). F32 and F64. argmax gives I64 indices (not differentiable).
#pragma once
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

Tensor sum(const Tensor& a, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Population (unbiased=false) or sample (unbiased=true) variance.
Tensor var(const Tensor& a, const std::vector<int64_t>& dims, bool unbiased = true,
           bool keepdim = false);
// Max along one dim; the gradient goes to the first maximal element.
Tensor max(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& a, int64_t dim, bool keepdim = false);

}  // namespace focus
