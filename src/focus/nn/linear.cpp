// Linear and Embedding layers (see linear.hpp).
#include "focus/nn/linear.hpp"

#include "focus/nn/init.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/matmul.hpp"

namespace focus {

Linear::Linear(int64_t in, int64_t out, Rng& rng, bool has_bias)
    : weight(
          register_parameter("weight", init::uniform({init::positive(out, "Linear: out_features"),
                                                      init::positive(in, "Linear: in_features")},
                                                     init::fan_in_bound(in), rng))),
      bias(has_bias ? register_parameter("bias", init::uniform({out}, init::fan_in_bound(in), rng))
                    : Tensor()) {}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Rng& rng)
    : weight(register_parameter(
          "weight", init::normal({init::positive(num_embeddings, "Embedding: num_embeddings"),
                                  init::positive(dim, "Embedding: dim")},
                                 1.0, rng))) {}

Tensor Embedding::forward(const Tensor& indices) const { return embedding(weight, indices); }

}  // namespace focus
