// conv2d and pooling: checked entry points and backward nodes over kernels/conv (see conv.hpp).
// Letters: N images, C input channels, O output channels, H x W input, OH x OW output.
#include "focus/ops/conv.hpp"

#include "focus/autograd/node.hpp"
#include "focus/kernels/conv.hpp"

namespace focus {

namespace {

void check_nchw(const Tensor& x, const char* op) {
  FOCUS_CHECK(x.defined(), ValueError, "{}: undefined input", op);
  FOCUS_CHECK(x.dim() == 4, ShapeError, "{}: input must be (N, C, H, W), got {}", op,
              to_string(x.shape()));
}

// ---- conv2d -----------------------------------------------------------------------------------

struct Conv2dNode : Node {
  Tensor x, w;  // contiguous (N, C, H, W), (O, C, KH, KW)
  ConvGeom g;
  bool has_bias = false;
  const char* name() const override { return "Conv2dBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor dy = dout.contiguous();  // (N, O, OH, OW)
    Tensor dx, dw, db;
    if (needs_grad(0)) dx = Tensor::empty(x.shape(), x.dtype());
    if (needs_grad(1)) dw = Tensor::empty(w.shape(), w.dtype());
    if (has_bias && needs_grad(2)) db = Tensor::empty({g.O}, w.dtype());
    dispatch_float(w.dtype(), "conv2d backward", [&]<class T>() {
      conv2d_backward<T>(dx.defined() ? dx.data<T>() : nullptr, dw.defined() ? dw.data<T>() : nullptr,
                         db.defined() ? db.data<T>() : nullptr, dy.data<T>(), x.data<T>(),
                         w.data<T>(), g);
    });
    return {dx, dw, db};
  }
  void release() override { x = w = Tensor(); }
};

// ---- pooling ----------------------------------------------------------------------------------

PoolGeom pool_geom(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, const char* op) {
  check_nchw(x, op);
  if (stride == -1) stride = kernel;
  FOCUS_CHECK(kernel >= 1 && stride >= 1 && padding >= 0, ValueError,
              "{}: need kernel >= 1, stride >= 1, padding >= 0; got kernel {}, stride {}, padding {}",
              op, kernel, stride, padding);
  FOCUS_CHECK(2 * padding <= kernel, ValueError,
              "{}: padding {} must be at most half the kernel {}", op, padding, kernel);
  const Shape& s = x.shape();
  FOCUS_CHECK(kernel <= s[2] + 2 * padding && kernel <= s[3] + 2 * padding, ShapeError,
              "{}: kernel {} larger than the padded input {} (padding {})", op, kernel,
              to_string(s), padding);
  FOCUS_CHECK(s[2] * s[3] <= INT32_MAX, ShapeError, "{}: plane of {} too large", op, to_string(s));
  return {s[0] * s[1], s[2], s[3], kernel, stride, padding};
}

Shape pooled_shape(const Tensor& x, const PoolGeom& g) {
  return {x.shape()[0], x.shape()[1], g.OH(), g.OW()};
}

struct MaxPool2dNode : Node {
  Tensor argmax;  // I32 (N, C, OH, OW): offset h*W + w of each window's max in its plane
  Shape x_shape;
  PoolGeom g;
  const char* name() const override { return "MaxPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor dy = dout.contiguous();
    Tensor dx = Tensor::empty(x_shape, dout.dtype());  // (N, C, H, W)
    dispatch_float(dout.dtype(), "max_pool2d backward", [&]<class T>() {
      max_pool2d_backward<T>(dx.data<T>(), dy.data<T>(), argmax.data<int32_t>(), g);
    });
    return {dx};
  }
  void release() override { argmax = Tensor(); }
};

struct AvgPool2dNode : Node {
  Shape x_shape;
  PoolGeom g;
  const char* name() const override { return "AvgPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor dy = dout.contiguous();
    Tensor dx = Tensor::empty(x_shape, dout.dtype());  // (N, C, H, W)
    dispatch_float(dout.dtype(), "avg_pool2d backward", [&]<class T>() {
      avg_pool2d_backward<T>(dx.data<T>(), dy.data<T>(), g);
    });
    return {dx};
  }
};

// dx[n, c, h, w] = dout[n, c] / (H * W).
struct GlobalAvgPool2dNode : Node {
  Shape x_shape;
  const char* name() const override { return "GlobalAvgPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor dy = dout.contiguous();  // (N, C)
    Tensor dx = Tensor::empty(x_shape, dout.dtype());  // (N, C, H, W)
    const int64_t planes = x_shape[0] * x_shape[1], HW = x_shape[2] * x_shape[3];
    dispatch_float(dout.dtype(), "global_avg_pool2d backward", [&]<class T>() {
      const T* pd = dy.data<T>();
      T* px = dx.data<T>();
      const T inv = T(1) / static_cast<T>(HW);
#pragma omp parallel for if (planes * HW > 65536)
      for (int64_t p = 0; p < planes; ++p) {
        const T v = pd[p] * inv;
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) px[p * HW + i] = v;
      }
    });
    return {dx};
  }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride,
              int64_t padding) {
  check_nchw(x, "conv2d");
  FOCUS_CHECK(w.defined() && w.dim() == 4, ShapeError,
              "conv2d: weight must be (O, C, KH, KW), got {}",
              w.defined() ? to_string(w.shape()) : "undefined");
  FOCUS_CHECK(stride >= 1 && padding >= 0, ValueError,
              "conv2d: need stride >= 1 and padding >= 0, got stride {}, padding {}", stride, padding);
  const Shape &xs = x.shape(), &ws = w.shape();
  FOCUS_CHECK(numel(ws) > 0, ShapeError, "conv2d: empty weight {}", to_string(ws));
  FOCUS_CHECK(xs[1] == ws[1], ShapeError,
              "conv2d: input {} has {} channels but weight {} expects {} (groups=1 only)",
              to_string(xs), xs[1], to_string(ws), ws[1]);
  FOCUS_CHECK(ws[2] <= xs[2] + 2 * padding && ws[3] <= xs[3] + 2 * padding, ShapeError,
              "conv2d: kernel {}x{} of weight {} larger than input {} padded by {}", ws[2], ws[3],
              to_string(ws), to_string(xs), padding);
  FOCUS_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == ws[0]), ShapeError,
              "conv2d: bias {} does not match weight {} (O, C, KH, KW)", to_string(bias.shape()),
              to_string(ws));
  FOCUS_CHECK(x.dtype() == w.dtype() && (!bias.defined() || bias.dtype() == w.dtype()), DTypeError,
              "conv2d: dtypes differ (input {}, weight {})", dtype_name(x.dtype()),
              dtype_name(w.dtype()));
  const ConvGeom g{xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], stride, padding};
  const Tensor xc = x.contiguous(), wc = w.contiguous();
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty({g.N, g.O, g.OH(), g.OW()}, x.dtype());  // (N, O, OH, OW)
  dispatch_float(x.dtype(), "conv2d", [&]<class T>() {
    conv2d_forward<T>(y.data<T>(), xc.data<T>(), wc.data<T>(), bc.defined() ? bc.data<T>() : nullptr,
                      g);
  });
  if (needs_graph({&x, &w, &bias})) {
    auto n = std::make_shared<Conv2dNode>();
    n->x = xc.detach();
    n->w = wc.detach();
    n->g = g;
    n->has_bias = bias.defined();
    attach(y, n, {&x, &w, &bias});
  }
  return y;
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const PoolGeom g = pool_geom(x, kernel, stride, padding, "max_pool2d");
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(pooled_shape(x, g), x.dtype());             // (N, C, OH, OW)
  Tensor argmax = Tensor::empty(pooled_shape(x, g), DType::I32);       // (N, C, OH, OW)
  dispatch_float(x.dtype(), "max_pool2d", [&]<class T>() {
    max_pool2d_forward<T>(y.data<T>(), argmax.data<int32_t>(), xc.data<T>(), g);
  });
  if (needs_graph({&x})) {
    auto n = std::make_shared<MaxPool2dNode>();
    n->argmax = argmax;
    n->x_shape = x.shape();
    n->g = g;
    attach(y, n, {&x});
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const PoolGeom g = pool_geom(x, kernel, stride, padding, "avg_pool2d");
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(pooled_shape(x, g), x.dtype());  // (N, C, OH, OW)
  dispatch_float(x.dtype(), "avg_pool2d", [&]<class T>() {
    avg_pool2d_forward<T>(y.data<T>(), xc.data<T>(), g);
  });
  if (needs_graph({&x})) {
    auto n = std::make_shared<AvgPool2dNode>();
    n->x_shape = x.shape();
    n->g = g;
    attach(y, n, {&x});
  }
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_nchw(x, "global_avg_pool2d");
  const Shape& s = x.shape();
  FOCUS_CHECK(s[2] * s[3] > 0, ShapeError, "global_avg_pool2d: empty plane in {}", to_string(s));
  const Tensor xc = x.contiguous();
  const int64_t planes = s[0] * s[1], HW = s[2] * s[3];
  Tensor y = Tensor::empty({s[0], s[1]}, x.dtype());  // (N, C)
  dispatch_float(x.dtype(), "global_avg_pool2d", [&]<class T>() {
    const T* px = xc.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for if (planes * HW > 65536)
    for (int64_t p = 0; p < planes; ++p) {
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < HW; ++i) acc += px[p * HW + i];
      py[p] = acc / static_cast<T>(HW);
    }
  });
  if (needs_graph({&x})) {
    auto n = std::make_shared<GlobalAvgPool2dNode>();
    n->x_shape = s;
    attach(y, n, {&x});
  }
  return y;
}

}  // namespace focus
