// Linear (y = x W^T + b) and Embedding (a lookup table) layers. Parameter names as torch.
// Members are handles on the registered parameters: write into them in place, never reassign.
#pragma once
#include "focus/nn/module.hpp"

namespace focus {

class Rng;

class Linear : public Module {
 public:
  // weight (OUT, IN) and bias (OUT) uniform in +-1/sqrt(IN), as torch.nn.Linear.
  Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias = true);
  Tensor forward(const Tensor& x) const;  // (..., IN) -> (..., OUT)
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  const Tensor weight;  // (OUT, IN)
  const Tensor bias;    // (OUT), undefined without bias
};

class Embedding : public Module {
 public:
  // weight (V, D) ~ N(0, 1), as torch.nn.Embedding.
  Embedding(int64_t num_embeddings, int64_t dim, Rng& rng);
  Tensor forward(const Tensor& indices) const;  // I64 (...) -> (..., D)

  const Tensor weight;  // (V, D)
};

}  // namespace focus
