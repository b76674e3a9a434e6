// Strided iteration: walks every element of an N-d shape and calls f(offset_0, ..., offset_k)
// with each operand's element offset. The innermost dim runs as a plain loop so the compiler
// can vectorise the contiguous case. Used by copies and by elementwise kernels' generic path.
#pragma once
#include <array>
#include <cstdint>

#include "focus/tensor/shape.hpp"

namespace focus {

template <size_t K, class F>
void for_each_strided(const Shape& shape, const std::array<const Shape*, K>& strides, F&& f) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (numel(shape) == 0) return;
  if (nd == 0) {
    std::array<int64_t, K> off{};
    std::apply(f, off);
    return;
  }
  std::vector<int64_t> idx(nd, 0);
  std::array<int64_t, K> base{};
  const int64_t inner = shape[nd - 1];
  std::array<int64_t, K> inner_stride;
  for (size_t k = 0; k < K; ++k) inner_stride[k] = (*strides[k])[nd - 1];
  while (true) {
    for (int64_t i = 0; i < inner; ++i) {
      std::array<int64_t, K> off;
      for (size_t k = 0; k < K; ++k) off[k] = base[k] + i * inner_stride[k];
      std::apply(f, off);
    }
    int64_t d = nd - 2;
    for (; d >= 0; --d) {
      ++idx[d];
      for (size_t k = 0; k < K; ++k) base[k] += (*strides[k])[d];
      if (idx[d] < shape[d]) break;
      for (size_t k = 0; k < K; ++k) base[k] -= (*strides[k])[d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace focus
