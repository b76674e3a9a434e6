// softmax / log_softmax: checked entry points and the backward node over kernels/softmax (see
// softmax.hpp). The input is viewed as (O, N, I) around `dim` (packed first if strided); the
// node saves the output, which is all the backward needs.
#include "focus/ops/softmax.hpp"

#include <algorithm>

#include "focus/autograd/node.hpp"
#include "focus/kernels/softmax.hpp"

namespace focus {

namespace {

struct SoftmaxNode : Node {
  Tensor y;  // the output, contiguous
  int64_t O = 1, N = 1, I = 1;
  bool log = false;
  const char* name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor g = dout.contiguous();
    Tensor dx = Tensor::empty(y.shape(), y.dtype());
    dispatch_float(y.dtype(), name(), [&]<class T>() {
      softmax_backward<T>(dx.data<T>(), g.data<T>(), y.data<T>(), O, N, I, log);
    });
    return {dx};
  }
  void release() override { y = Tensor(); }
};

Tensor softmax_impl(const Tensor& a, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  FOCUS_CHECK(a.defined(), ValueError, "{}: undefined input", op);
  const int64_t nd = a.dim(), r = std::max<int64_t>(nd, 1);
  FOCUS_CHECK(dim >= -r && dim < r, ShapeError, "{}: dim {} out of range for shape {}", op, dim,
              to_string(a.shape()));
  const int64_t d = dim < 0 ? dim + r : dim;
  int64_t O = 1, N = nd == 0 ? 1 : a.shape()[d], I = 1;
  for (int64_t k = 0; k < d && k < nd; ++k) O *= a.shape()[k];
  for (int64_t k = d + 1; k < nd; ++k) I *= a.shape()[k];
  const Tensor x = a.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.dtype());
  dispatch_float(a.dtype(), op,
                 [&]<class T>() { softmax_forward<T>(y.data<T>(), x.data<T>(), O, N, I, log); });
  if (needs_graph({&a})) {
    auto node = std::make_shared<SoftmaxNode>();
    node->y = y.detach();
    node->O = O;
    node->N = N;
    node->I = I;
    node->log = log;
    attach(y, node, {&a});
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& a, int64_t dim) { return softmax_impl(a, dim, false); }
Tensor log_softmax(const Tensor& a, int64_t dim) { return softmax_impl(a, dim, true); }

}  // namespace focus
