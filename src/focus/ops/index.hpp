// Indexing, joining and embedding ops. Indices are I64 (I32 accepted); out-of-range indices
// throw ValueError naming the index and the size.
#pragma once
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

// weight (V, D), indices (...) -> (..., D). Backward scatters-adds into dweight.
Tensor embedding(const Tensor& weight, const Tensor& indices);
Tensor concat(const std::vector<Tensor>& parts, int64_t dim);
std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int64_t dim);
// Picks slices `index` (1-D) along `dim`.
Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index);
// torch.gather: out[i][j] = a[i][index[i][j]] along dim; index has a's rank.
Tensor gather(const Tensor& a, int64_t dim, const Tensor& index);

}  // namespace focus
