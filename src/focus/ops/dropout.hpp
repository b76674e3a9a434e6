// Inverted dropout with a counter-based mask: element i of the call is kept iff
// uniform(seed, offset + i) >= p, so the backward regenerates the mask instead of storing it,
// and the result does not depend on the thread count. Identity when !training or p == 0.
#pragma once
#include "focus/tensor/tensor.hpp"

namespace focus {

class Rng;
Tensor dropout(const Tensor& x, double p, bool training, Rng& rng);

}  // namespace focus
