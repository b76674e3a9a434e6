// Inverted dropout over the counter-based mask of kernels/dropout (see dropout.hpp). The forward
// records the mask as bits (n / 8 bytes) when a graph needs them; the backward applies those bits
// to the gradient instead of regenerating the mask.
#include "focus/ops/dropout.hpp"

#include "focus/autograd/node.hpp"
#include "focus/kernels/dropout.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

// out = mask(seed, offset) * in / (1 - p), elementwise over the packed input; the mask also goes
// to bits when given (dropout_bit_bytes(n) bytes).
Tensor masked(const Tensor& in, uint64_t seed, uint64_t offset, double p, uint8_t* bits) {
  const Tensor c = in.contiguous();
  Tensor out = Tensor::empty(in.shape(), in.dtype());
  dispatch_float(in.dtype(), "dropout", [&]<class T>() {
    dropout_apply<T>(out.data<T>(), c.data<T>(), c.numel(), seed, offset, p, bits);
  });
  return out;
}

struct DropoutNode : Node {
  std::vector<uint8_t> bits;  // the forward's mask, bit i % 8 of byte i / 8
  double p = 0;
  const char* name() const override { return "DropoutBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor c = dout.contiguous();  // (same shape as x)
    Tensor dx = Tensor::empty(dout.shape(), dout.dtype());
    dispatch_float(dout.dtype(), "dropout backward", [&]<class T>() {
      dropout_apply_bits<T>(dx.data<T>(), c.data<T>(), c.numel(), bits.data(), p);
    });
    return {dx};
  }
  void release() override { std::vector<uint8_t>().swap(bits); }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Rng& rng) {
  FOCUS_CHECK(x.defined(), ValueError, "dropout: undefined input");
  FOCUS_CHECK(p >= 0.0 && p < 1.0, ValueError, "dropout: p must be in [0, 1), got {}", p);
  FOCUS_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, DTypeError,
              "dropout: dtype {} not supported (F32, F64)", dtype_name(x.dtype()));
  if (!training || p == 0.0) return x;
  const auto [seed, offset] = reserve_counters(rng, dropout_counters(x.numel()));
  if (!needs_graph({&x})) return masked(x, seed, offset, p, nullptr);
  auto n = std::make_shared<DropoutNode>();
  n->bits.resize(static_cast<size_t>(dropout_bit_bytes(x.numel())));
  n->p = p;
  Tensor y = masked(x, seed, offset, p, n->bits.data());
  attach(y, n, {&x});
  return y;
}

}  // namespace focus
