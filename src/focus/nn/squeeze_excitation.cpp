// Squeeze-and-Excitation block (see squeeze_excitation.hpp).
#include "focus/nn/squeeze_excitation.hpp"

#include <algorithm>

#include "focus/nn/init.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/unary.hpp"
#include "focus/ops/view.hpp"

namespace focus {

SqueezeExcitation::SqueezeExcitation(int64_t channels, int64_t reduction, Rng& rng)
    : fc1(register_module(
          "fc1", std::make_shared<Linear>(
                     init::positive(channels, "SqueezeExcitation: channels"),
                     std::max<int64_t>(
                         1, channels / init::positive(reduction, "SqueezeExcitation: reduction")),
                     rng))),
      fc2(register_module("fc2", std::make_shared<Linear>(fc1->out_features(), channels, rng))) {}

Tensor SqueezeExcitation::forward(const Tensor& x, Tensor* gates_out) const {
  FOCUS_CHECK(x.dim() == 4 && x.size(1) == fc1->in_features(), ShapeError,
              "SqueezeExcitation: input {} must be (N, {}, H, W)", to_string(x.shape()),
              fc1->in_features());
  const Tensor s = sigmoid(fc2->forward(relu(fc1->forward(global_avg_pool2d(x)))));  // (N, C)
  if (gates_out) *gates_out = s;
  return mul(x, reshape(s, {x.size(0), x.size(1), 1, 1}));
}

}  // namespace focus
