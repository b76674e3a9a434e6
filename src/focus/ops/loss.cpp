// Losses: checked entry points and fused backward nodes over kernels/loss (see loss.hpp). Each
// returns a scalar (shape ()) of the input's dtype. cross_entropy keeps two numbers per row
// (max, log-sum-exp of the shifted row) and recomputes the softmax in its backward; targets get
// no gradient. bce_with_logits and mse_loss give gradients to both operands, like torch.
#include "focus/ops/loss.hpp"

#include "focus/autograd/node.hpp"
#include "focus/kernels/loss.hpp"

namespace focus {

namespace {

template <class T>
T* ptr_or_null(Tensor t) {
  return t.defined() ? t.data<T>() : nullptr;
}

struct CrossEntropyNode : Node {
  Tensor x, t, stats;  // logits (N, C), targets (N), (N, 2); contiguous
  double eps = 0;
  int64_t ignore = -100, count = 0;
  const char* name() const override { return "CrossEntropyBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const int64_t N = x.shape()[0], C = x.shape()[1];
    Tensor dx = Tensor::empty({N, C}, x.dtype());
    const double scale = dout.item() / double(count);
    dispatch_float(x.dtype(), name(), [&]<class T>() {
      cross_entropy_backward<T>(dx.data<T>(), x.data<T>(), stats.data<T>(), t.data<int64_t>(), N, C,
                                eps, ignore, scale);
    });
    return {dx, Tensor()};
  }
  void release() override { x = t = stats = Tensor(); }
};

// Pointwise losses of x and y (same shape): bce_with_logits or mse.
struct PairLossNode : Node {
  Tensor x, y;  // contiguous
  bool bce = false;
  const char* name() const override { return bce ? "BceWithLogitsBackward" : "MseLossBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const int64_t n = x.numel();
    Tensor dx, dy;
    if (needs_grad(0)) dx = Tensor::empty(x.shape(), x.dtype());
    if (needs_grad(1)) dy = Tensor::empty(x.shape(), x.dtype());
    const double scale = dout.item() / double(n);
    dispatch_float(x.dtype(), name(), [&]<class T>() {
      if (bce)
        bce_with_logits_backward<T>(ptr_or_null<T>(dx), ptr_or_null<T>(dy), x.data<T>(),
                                    y.data<T>(), n, scale);
      else
        mse_backward<T>(ptr_or_null<T>(dx), ptr_or_null<T>(dy), x.data<T>(), y.data<T>(), n, scale);
    });
    return {dx, dy};
  }
  void release() override { x = y = Tensor(); }
};

Tensor pair_loss(const Tensor& x, const Tensor& y, bool bce, const char* op) {
  FOCUS_CHECK(x.defined() && y.defined(), ValueError, "{}: undefined input", op);
  FOCUS_CHECK(x.shape() == y.shape(), ShapeError, "{}: input {} and target {} differ", op,
              to_string(x.shape()), to_string(y.shape()));
  FOCUS_CHECK(x.dtype() == y.dtype(), DTypeError, "{}: input is {}, target is {}", op,
              dtype_name(x.dtype()), dtype_name(y.dtype()));
  const Tensor xc = x.contiguous(), yc = y.contiguous();
  const int64_t n = x.numel();
  Tensor out;
  dispatch_float(x.dtype(), op, [&]<class T>() {
    const double total = bce ? bce_with_logits_forward<T>(xc.data<T>(), yc.data<T>(), n)
                             : mse_forward<T>(xc.data<T>(), yc.data<T>(), n);
    out = Tensor::scalar(total / double(n), x.dtype());
  });
  if (needs_graph({&x, &y})) {
    auto node = std::make_shared<PairLossNode>();
    node->x = xc.detach();
    node->y = yc.detach();
    node->bce = bce;
    attach(out, node, {&x, &y});
  }
  return out;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, double label_smoothing,
                     int64_t ignore_index) {
  FOCUS_CHECK(logits.defined() && targets.defined(), ValueError,
              "cross_entropy: undefined logits or targets");
  FOCUS_CHECK(logits.dim() == 2 && logits.shape()[1] > 0, ShapeError,
              "cross_entropy: logits {} are not (N, C) with C > 0", to_string(logits.shape()));
  FOCUS_CHECK(targets.dtype() == DType::I64, DTypeError,
              "cross_entropy: targets must be I64, got {} {}", dtype_name(targets.dtype()),
              to_string(targets.shape()));
  FOCUS_CHECK(targets.dim() == 1 && targets.shape()[0] == logits.shape()[0], ShapeError,
              "cross_entropy: targets {} do not match logits {} (want (N,))",
              to_string(targets.shape()), to_string(logits.shape()));
  FOCUS_CHECK(label_smoothing >= 0 && label_smoothing <= 1, ValueError,
              "cross_entropy: label_smoothing {} not in [0, 1]", label_smoothing);
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  const Tensor t = targets.contiguous();
  const int64_t* pt = t.data<int64_t>();
  int64_t count = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (pt[n] == ignore_index) continue;
    FOCUS_CHECK(pt[n] >= 0 && pt[n] < C, ValueError,
                "cross_entropy: target {} of row {} out of range [0, {}) for logits {}", pt[n], n,
                C, to_string(logits.shape()));
    ++count;
  }
  const Tensor x = logits.contiguous();
  Tensor stats = Tensor::empty({N, 2}, logits.dtype());  // (N, 2): max, log-sum-exp shifted
  Tensor out;
  dispatch_float(logits.dtype(), "cross_entropy", [&]<class T>() {
    const double total = cross_entropy_forward<T>(stats.data<T>(), x.data<T>(), pt, N, C,
                                                  label_smoothing, ignore_index);
    out = Tensor::scalar(total / double(count), logits.dtype());  // NaN if every row is ignored
  });
  if (needs_graph({&logits})) {
    auto node = std::make_shared<CrossEntropyNode>();
    node->x = x.detach();
    node->t = t;
    node->stats = stats;
    node->eps = label_smoothing;
    node->ignore = ignore_index;
    node->count = count;
    attach(out, node, {&logits, &targets});
  }
  return out;
}

Tensor bce_with_logits(const Tensor& x, const Tensor& y) {
  return pair_loss(x, y, true, "bce_with_logits");
}

Tensor mse_loss(const Tensor& x, const Tensor& y) { return pair_loss(x, y, false, "mse_loss"); }

}  // namespace focus
