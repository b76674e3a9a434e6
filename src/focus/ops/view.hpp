// Differentiable shape ops. They return views (no copy) where the layout allows, and their
// backward maps the gradient back to the input's shape.
#pragma once
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

Tensor reshape(const Tensor& a, const Shape& shape);  // one dim may be -1
Tensor flatten(const Tensor& a, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& a, int64_t dim, int64_t index);
Tensor expand(const Tensor& a, const Shape& shape);
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor squeeze(const Tensor& a, int64_t dim);
Tensor contiguous(const Tensor& a);  // a itself if contiguous, else a differentiable copy

}  // namespace focus
