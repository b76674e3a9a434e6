// int8 inference ops (see quantized.hpp): the checks, then the kernels.
#include "focus/ops/quantized.hpp"

#include "focus/autograd/node.hpp"
#include "focus/kernels/qconv.hpp"

namespace focus {

namespace {

void check_inference(const Tensor& x, const Tensor& bias, int64_t out, const char* op) {
  FOCUS_CHECK(x.defined() && x.dtype() == DType::F32, DTypeError, "{}: int8 weights take an F32 input, not {}", op,
              x.defined() ? dtype_name(x.dtype()) : "undefined");
  FOCUS_CHECK(!bias.defined() || (bias.dtype() == DType::F32 && bias.dim() == 1 && bias.shape()[0] == out),
              ShapeError, "{}: bias {} does not match {} output channels (F32)", op,
              bias.defined() ? to_string(bias.shape()) : "none", out);
  FOCUS_CHECK(!needs_graph({&x, &bias}), DTypeError,
              "{}: int8 weights are for inference only: the input {} or bias needs a gradient "
              "(run under NoGradGuard, or keep the F32 weights)",
              op, to_string(x.shape()));
}

}  // namespace

Tensor linear_int8(const Tensor& x, const QWeight& w, const Tensor& bias) {
  check_inference(x, bias, w.N, "linear_int8");
  FOCUS_CHECK(x.dim() >= 1 && x.shape().back() == w.K, ShapeError,
              "linear_int8: input {} does not match weight ({}, {}) (OUT, IN)", to_string(x.shape()),
              w.N, w.K);
  const Tensor xc = x.contiguous();
  Shape ys = x.shape();
  ys.back() = w.N;
  Tensor y = Tensor::empty(ys);  // (..., OUT)
  const int64_t rows = w.K == 0 ? 0 : x.numel() / w.K;
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  qlinear_forward(y.data<float>(), w.N, xc.data<float>(), w.K, rows, w,
                  bc.defined() ? bc.data<float>() : nullptr);
  return y;
}

Tensor conv2d_int8(const Tensor& x, const QWeight& w, const Tensor& bias, int64_t kernel,
                   int64_t stride, int64_t padding, const Tensor& out_scale, bool relu) {
  check_inference(x, bias, w.N, "conv2d_int8");
  check_inference(x, out_scale, w.N, "conv2d_int8");
  FOCUS_CHECK(x.dim() == 4, ShapeError, "conv2d_int8: input {} is not (N, C, H, W)", to_string(x.shape()));
  const Shape& xs = x.shape();
  FOCUS_CHECK(kernel >= 1 && stride >= 1 && padding >= 0 && xs[1] * kernel * kernel == w.K &&
                  kernel <= xs[2] + 2 * padding && kernel <= xs[3] + 2 * padding,
              ShapeError,
              "conv2d_int8: input {} does not match a {}x{} kernel (stride {}, padding {}) packed "
              "as ({}, {})",
              to_string(xs), kernel, kernel, stride, padding, w.N, w.K);
  const ConvGeom g{xs[0], xs[1], xs[2], xs[3], w.N, kernel, kernel, stride, padding};
  const Tensor xc = x.contiguous();
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty({g.N, g.O, g.OH(), g.OW()});  // (N, O, OH, OW)
  const Tensor sc = out_scale.defined() ? out_scale.contiguous() : Tensor();
  conv2d_forward_int8(y.data<float>(), xc.data<float>(), w, bc.defined() ? bc.data<float>() : nullptr,
                      g, relu ? QEpilogue::Relu : QEpilogue::None,
                      sc.defined() ? sc.data<float>() : nullptr);
  return y;
}

}  // namespace focus
