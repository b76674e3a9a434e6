// Inverted dropout over the counter-based mask of kernels/dropout (see dropout.hpp). The node
// keeps only (seed, offset, p): its backward reruns the same kernel on the gradient.
#include "focus/ops/dropout.hpp"

#include "focus/autograd/node.hpp"
#include "focus/kernels/dropout.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

// out = mask(seed, offset) * in / (1 - p), elementwise over the packed input.
Tensor masked(const Tensor& in, uint64_t seed, uint64_t offset, double p, const char* op) {
  const Tensor c = in.contiguous();
  Tensor out = Tensor::empty(in.shape(), in.dtype());
  dispatch_float(in.dtype(), op, [&]<class T>() {
    dropout_apply<T>(out.data<T>(), c.data<T>(), c.numel(), seed, offset, p);
  });
  return out;
}

struct DropoutNode : Node {
  uint64_t seed = 0, offset = 0;
  double p = 0;
  const char* name() const override { return "DropoutBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    return {masked(dout, seed, offset, p, "dropout backward")};
  }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Rng& rng) {
  FOCUS_CHECK(x.defined(), ValueError, "dropout: undefined input");
  FOCUS_CHECK(p >= 0.0 && p < 1.0, ValueError, "dropout: p must be in [0, 1), got {}", p);
  FOCUS_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, DTypeError,
              "dropout: dtype {} not supported (F32, F64)", dtype_name(x.dtype()));
  if (!training || p == 0.0) return x;
  const auto [seed, offset] = reserve_counters(rng, dropout_counters(x.numel()));
  Tensor y = masked(x, seed, offset, p, "dropout");
  if (needs_graph({&x})) {
    auto n = std::make_shared<DropoutNode>();
    n->seed = seed;
    n->offset = offset;
    n->p = p;
    attach(y, n, {&x});
  }
  return y;
}

}  // namespace focus
