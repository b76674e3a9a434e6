// Dropout layer: inverted dropout in training, identity in eval. It owns its Rng (seeded from the
// construction Rng), so masks do not disturb other streams.
#pragma once
#include "focus/nn/module.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

class Dropout : public Module {
 public:
  Dropout(double p, Rng& rng);  // p in [0, 1)
  Tensor forward(const Tensor& x);
  double p() const { return p_; }

 private:
  double p_;
  Rng rng_;
};

}  // namespace focus
