// layer_norm and batch_norm: checked entry points, running-statistics update and backward nodes
// over kernels/norm (see norm.hpp). Letters: R rows and C features (layer_norm); N batch,
// C channels, S the product of the spatial dims (batch_norm).
#include "focus/ops/norm.hpp"

#include <cmath>

#include "focus/autograd/node.hpp"
#include "focus/kernels/norm.hpp"

namespace focus {

namespace {

// The data of an optional tensor (a handle copy, so outputs get a writable pointer).
template <class T>
T* ptr_or_null(Tensor t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// weight / bias: undefined, or (C) of x's dtype.
void check_affine(const Tensor& p, int64_t C, DType dt, const char* op, const char* what,
                  const Tensor& x) {
  if (!p.defined()) return;
  FOCUS_CHECK(p.dim() == 1 && p.shape()[0] == C, ShapeError, "{}: {} {} does not match input {}",
              op, what, to_string(p.shape()), to_string(x.shape()));
  FOCUS_CHECK(p.dtype() == dt, DTypeError, "{}: {} is {}, input is {}", op, what,
              dtype_name(p.dtype()), dtype_name(dt));
}

struct LayerNormNode : Node {
  Tensor x, w, mean, rstd;  // (R, C), (C) or undefined, (R), (R); contiguous
  Shape x_shape;
  bool has_bias = false;
  const char* name() const override { return "LayerNormBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const int64_t R = x.shape()[0], C = x.shape()[1];
    const Tensor g = dout.contiguous();
    Tensor dx, dw, db;
    if (needs_grad(0)) dx = Tensor::empty(x_shape, x.dtype());
    if (w.defined() && needs_grad(1)) dw = Tensor::empty({C}, x.dtype());
    if (has_bias && needs_grad(2)) db = Tensor::empty({C}, x.dtype());
    dispatch_float(x.dtype(), name(), [&]<class T>() {
      layer_norm_backward<T>(ptr_or_null<T>(dx), ptr_or_null<T>(dw), ptr_or_null<T>(db),
                             g.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(),
                             ptr_or_null<T>(w), R, C);
    });
    return {dx, dw, db};
  }
  void release() override { x = w = mean = rstd = Tensor(); }
};

struct BatchNormNode : Node {
  Tensor x, w, mean, rstd;  // (N, C, S), (C) or undefined, (C), (C); contiguous
  Shape x_shape;
  bool has_bias = false, training = true;
  const char* name() const override { return "BatchNormBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const int64_t N = x.shape()[0], C = x.shape()[1], S = x.shape()[2];
    const Tensor g = dout.contiguous();
    Tensor dx, dw, db;
    if (needs_grad(0)) dx = Tensor::empty(x_shape, x.dtype());
    if (w.defined() && needs_grad(1)) dw = Tensor::empty({C}, x.dtype());
    if (has_bias && needs_grad(2)) db = Tensor::empty({C}, x.dtype());
    dispatch_float(x.dtype(), name(), [&]<class T>() {
      batch_norm_backward<T>(ptr_or_null<T>(dx), ptr_or_null<T>(dw), ptr_or_null<T>(db),
                             g.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(),
                             ptr_or_null<T>(w), N, C, S, training);
    });
    return {dx, dw, db};
  }
  void release() override { x = w = mean = rstd = Tensor(); }
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  FOCUS_CHECK(x.defined(), ValueError, "layer_norm: undefined input");
  FOCUS_CHECK(x.dim() >= 1 && x.shape().back() > 0, ShapeError,
              "layer_norm: input {} has no features to normalise", to_string(x.shape()));
  FOCUS_CHECK(eps >= 0, ValueError, "layer_norm: eps {} < 0", eps);
  const int64_t C = x.shape().back(), R = x.numel() / C;
  check_affine(weight, C, x.dtype(), "layer_norm", "weight", x);
  check_affine(bias, C, x.dtype(), "layer_norm", "bias", x);
  const Tensor x2 = x.contiguous().view({R, C});  // (R, C)
  const Tensor w = weight.defined() ? weight.contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty({R}, x.dtype()), rstd = Tensor::empty({R}, x.dtype());
  dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
    layer_norm_forward<T>(y.data<T>(), mean.data<T>(), rstd.data<T>(), x2.data<T>(),
                          ptr_or_null<T>(w), ptr_or_null<T>(b), R, C, eps);
  });
  if (needs_graph({&x, &weight, &bias})) {
    auto node = std::make_shared<LayerNormNode>();
    node->x = x2.detach();
    node->w = w.defined() ? w.detach() : Tensor();
    node->mean = mean;
    node->rstd = rstd;
    node->x_shape = x.shape();
    node->has_bias = bias.defined();
    attach(y, node, {&x, &weight, &bias});
  }
  return y;
}

Tensor batch_norm(const Tensor& x, Tensor& running_mean, Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  FOCUS_CHECK(x.defined(), ValueError, "batch_norm: undefined input");
  FOCUS_CHECK(x.dim() >= 2, ShapeError, "batch_norm: input {} is not (N, C, ...)",
              to_string(x.shape()));
  FOCUS_CHECK(eps >= 0, ValueError, "batch_norm: eps {} < 0", eps);
  FOCUS_CHECK(momentum >= 0 && momentum <= 1, ValueError, "batch_norm: momentum {} not in [0, 1]",
              momentum);
  const DType dt = x.dtype();
  const int64_t N = x.shape()[0], C = x.shape()[1], S = x.numel() / std::max<int64_t>(N * C, 1);
  check_affine(weight, C, dt, "batch_norm", "weight", x);
  check_affine(bias, C, dt, "batch_norm", "bias", x);
  for (const Tensor* r : {&running_mean, &running_var}) {
    const char* what = r == &running_mean ? "running_mean" : "running_var";
    FOCUS_CHECK(r->defined() || training, ValueError, "batch_norm: eval mode needs {}", what);
    check_affine(*r, C, dt, "batch_norm", what, x);
    FOCUS_CHECK(!r->defined() || r->is_contiguous(), ValueError,
                "batch_norm: {} must be contiguous (it is updated in place)", what);
  }
  FOCUS_CHECK(!training || N * S > 1, ValueError,
              "batch_norm: training needs more than one value per channel, input is {}",
              to_string(x.shape()));
  const Tensor x3 = x.contiguous().view({N, C, S});  // (N, C, S)
  const Tensor w = weight.defined() ? weight.contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), dt);
  Tensor mean = Tensor::empty({C}, dt), rstd = Tensor::empty({C}, dt);  // (C) each
  dispatch_float(dt, "batch_norm", [&]<class T>() {
    T* pm = mean.data<T>();
    T* pr = rstd.data<T>();
    if (training) {
      batch_norm_stats<T>(pm, pr, x3.data<T>(), N, C, S);  // pr holds the variance for now
      const double m = momentum, unbias = double(N * S) / double(N * S - 1);
      T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
      T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
      for (int64_t c = 0; c < C; ++c) {
        if (rm) rm[c] = static_cast<T>((1 - m) * rm[c] + m * pm[c]);
        if (rv) rv[c] = static_cast<T>((1 - m) * rv[c] + m * pr[c] * unbias);
        pr[c] = static_cast<T>(1.0 / std::sqrt(double(pr[c]) + eps));
      }
    } else {
      const T* rm = running_mean.data<T>();
      const T* rv = running_var.data<T>();
      for (int64_t c = 0; c < C; ++c) {
        pm[c] = rm[c];
        pr[c] = static_cast<T>(1.0 / std::sqrt(double(rv[c]) + eps));
      }
    }
    batch_norm_forward<T>(y.data<T>(), x3.data<T>(), pm, pr, ptr_or_null<T>(w), ptr_or_null<T>(b),
                          N, C, S);
  });
  if (needs_graph({&x, &weight, &bias})) {
    auto node = std::make_shared<BatchNormNode>();
    node->x = x3.detach();
    node->w = w.defined() ? w.detach() : Tensor();
    node->mean = mean;
    node->rstd = rstd;
    node->x_shape = x.shape();
    node->has_bias = bias.defined();
    node->training = training;
    attach(y, node, {&x, &weight, &bias});
  }
  return y;
}

}  // namespace focus
