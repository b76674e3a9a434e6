// Parameter initialisers (and the size check) shared by the layers, following torch's defaults:
// Linear/Conv2d weights and biases uniform in +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)),
// Xavier-uniform for attention projections, small normals for learned embeddings/tokens. All F32;
// Module::to() converts afterwards.
#pragma once
#include <cmath>

#include "focus/tensor/rng.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus::init {

// A layer size checked at construction: ValueError naming `what` unless positive.
inline int64_t positive(int64_t n, const char* what) {
  FOCUS_CHECK(n > 0, ValueError, "{} must be positive, got {}", what, n);
  return n;
}

// Uniform in [-bound, bound).
inline Tensor uniform(const Shape& shape, double bound, Rng& rng) {
  return Tensor::rand(shape, rng, DType::F32, -bound, bound);
}
inline Tensor normal(const Shape& shape, double std, Rng& rng) {
  return Tensor::randn(shape, rng, DType::F32, std);
}
// torch.nn.Linear / Conv2d default bound for both weight and bias.
inline double fan_in_bound(int64_t fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); }
// torch.nn.init.xavier_uniform_ bound (gain 1).
inline double xavier_bound(int64_t fan_in, int64_t fan_out) {
  return std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
}

}  // namespace focus::init
