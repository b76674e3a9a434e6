// Pointwise functions: checked entry points and one backward node over kernels/unary (see
// unary.hpp). Outputs are contiguous; a strided input is packed first. The node saves the input
// or the output, whichever its derivative reads (exp, sqrt, tanh, sigmoid, relu: the output);
// GELU (erf form) saves its derivative itself, written by the forward from the same erfc and exp,
// so its backward is one multiply.
#include "focus/ops/unary.hpp"

#include "focus/autograd/node.hpp"
#include "focus/kernels/unary.hpp"
#include "focus/ops/elementwise.hpp"

namespace focus {

namespace {

struct UnaryNode : Node {
  UnaryOp op;
  double p = 0;
  const char* node_name;
  Tensor saved;  // contiguous x or y (see unary_backward_uses_output); GELU: f'(x)
  const char* name() const override { return node_name; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    if (op == UnaryOp::Gelu) return {mul(dout, saved)};  // dx = dy * f'(x)
    const Tensor g = dout.contiguous();
    Tensor dx = Tensor::empty(saved.shape(), saved.dtype());
    dispatch_float(saved.dtype(), node_name, [&]<class T>() {
      unary_backward<T>(op, dx.data<T>(), g.data<T>(), saved.data<T>(), dx.numel(), p);
    });
    return {dx};
  }
  void release() override { saved = Tensor(); }
};

Tensor unary(UnaryOp op, const Tensor& a, const char* name, const char* node_name, double p = 0) {
  FOCUS_CHECK(a.defined(), ValueError, "{}: undefined input", name);
  const Tensor x = a.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.dtype());
  const bool graph = needs_graph({&a});
  // In a graph GELU also writes its derivative (same shape as x), which the node saves.
  Tensor d = graph && op == UnaryOp::Gelu ? Tensor::empty(a.shape(), a.dtype()) : Tensor();
  dispatch_float(a.dtype(), name, [&]<class T>() {
    if (d.defined()) gelu_forward_derivative<T>(y.data<T>(), d.data<T>(), x.data<T>(), y.numel());
    else unary_forward<T>(op, y.data<T>(), x.data<T>(), y.numel(), p);
  });
  if (graph) {
    auto node = std::make_shared<UnaryNode>();
    node->op = op;
    node->p = p;
    node->node_name = node_name;
    node->saved = d.defined() ? d : unary_backward_uses_output(op) ? y.detach() : x.detach();
    attach(y, node, {&a});
  }
  return y;
}

}  // namespace

Tensor exp(const Tensor& a) { return unary(UnaryOp::Exp, a, "exp", "ExpBackward"); }
Tensor log(const Tensor& a) { return unary(UnaryOp::Log, a, "log", "LogBackward"); }
Tensor sqrt(const Tensor& a) { return unary(UnaryOp::Sqrt, a, "sqrt", "SqrtBackward"); }
Tensor tanh(const Tensor& a) { return unary(UnaryOp::Tanh, a, "tanh", "TanhBackward"); }
Tensor sigmoid(const Tensor& a) { return unary(UnaryOp::Sigmoid, a, "sigmoid", "SigmoidBackward"); }
Tensor relu(const Tensor& a) { return unary(UnaryOp::Relu, a, "relu", "ReluBackward"); }
Tensor gelu(const Tensor& a, bool tanh_approx) {
  return tanh_approx ? unary(UnaryOp::GeluTanh, a, "gelu", "GeluTanhBackward")
                     : unary(UnaryOp::Gelu, a, "gelu", "GeluBackward");
}
Tensor square(const Tensor& a) { return unary(UnaryOp::Square, a, "square", "SquareBackward"); }
Tensor pow(const Tensor& a, double p) { return unary(UnaryOp::Pow, a, "pow", "PowBackward", p); }
Tensor abs(const Tensor& a) { return unary(UnaryOp::Abs, a, "abs", "AbsBackward"); }

}  // namespace focus
