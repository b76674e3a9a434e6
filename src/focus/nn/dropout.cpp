// Dropout layer (see dropout.hpp).
#include "focus/nn/dropout.hpp"

#include "focus/ops/dropout.hpp"

namespace focus {

Dropout::Dropout(double p, Rng& rng) : p_(p), rng_(rng.next_u64()) {
  FOCUS_CHECK(p >= 0.0 && p < 1.0, ValueError, "Dropout: p = {} outside [0, 1)", p);
  register_rng("rng", &rng_);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), rng_); }

}  // namespace focus
