// Broadcasting elementwise arithmetic (NumPy rules), differentiable. Backward reduces each
// gradient back to its input's shape (sum_to). F32 and F64.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor neg(const Tensor& a);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// Sums `g` over broadcast dims so the result has `shape` (not differentiable; for backwards).
Tensor sum_to(const Tensor& g, const Shape& shape);

// In-place helpers on raw tensors (no autograd; the destination must not require grad):
// dst += alpha * src (same shape), used by optimizers and gradient accumulation.
void add_inplace(Tensor& dst, const Tensor& src, double alpha = 1.0);
void scale_inplace(Tensor& dst, double alpha);

}  // namespace focus
