// Convolution and pooling layers (see conv.hpp).
#include "focus/nn/conv.hpp"

#include "focus/nn/init.hpp"
#include "focus/nn/norm.hpp"
#include "focus/ops/unary.hpp"
#include <cmath>
#include <vector>

#include "focus/autograd/node.hpp"
#include "focus/kernels/qconv.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/quantized.hpp"
#include "focus/nn/quant_probe.hpp"

namespace focus {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, Rng& rng, int64_t stride_, int64_t padding_,
               bool has_bias)
    : weight(register_parameter("weight",
                                init::uniform({init::positive(out, "Conv2d: out_channels"),
                                               init::positive(in, "Conv2d: in_channels"),
                                               init::positive(kernel, "Conv2d: kernel"), kernel},
                                              init::fan_in_bound(in * kernel * kernel), rng))),
      bias(has_bias
               ? register_parameter(
                     "bias", init::uniform({out}, init::fan_in_bound(in * kernel * kernel), rng))
               : Tensor()),
      stride(init::positive(stride_, "Conv2d: stride")),
      padding(padding_) {
  FOCUS_CHECK(padding >= 0, ValueError, "Conv2d: padding must be >= 0, got {}", padding);
}

Tensor Conv2d::forward(const Tensor& x) const {
  if (int8_ && !grad_enabled()) {
    Tensor y = conv2d_int8(x, *int8_, bias, weight.size(2), stride, padding);
    if (QuantProbe* p = quant_probe()) p->add(this, y, conv2d(x, weight, bias, stride, padding));
    return y;
  }
  return conv2d(x, weight, bias, stride, padding);
}

Tensor Conv2d::forward_bn(const Tensor& x, BatchNorm2d& bn, bool relu) const {
  if (!int8_ || grad_enabled() || bn.is_training() || quant_probe() ||
      bn.running_var.dtype() != DType::F32) {
    const Tensor y = bn.forward(forward(x));
    return relu ? focus::relu(y) : y;
  }
  // bn(z) = (z - mean) / sqrt(var + eps) * gamma + beta = a * z + c, a and c per channel.
  const int64_t O = weight.size(0);
  const std::vector<float> mean = bn.running_mean.to_vector<float>(),
                           var = bn.running_var.to_vector<float>(),
                           gamma = bn.weight.to_vector<float>(), beta = bn.bias.to_vector<float>();
  const BatchNormFold f = fold_batch_norm(gamma, beta, mean, var, float(bn.eps),
                                          bias.defined() ? bias.to_vector<float>() : std::vector<float>{});
  return conv2d_int8(x, *int8_, Tensor::from_vector(f.shift, {O}), weight.size(2), stride, padding,
                     Tensor::from_vector(f.scale, {O}), relu);
}

void Conv2d::on_inference_dtype(DType dtype) {
  int8_.reset();
  if (dtype != DType::I8 || weight.dtype() != DType::F32) return;
  const Tensor w = weight.contiguous();  // (O, C, K, K)
  const int64_t O = w.size(0), C = w.size(1), K = w.size(2);
  std::vector<float> hwc(static_cast<size_t>(O * K * K * C));  // (O, K, K, C)
  conv_weight_hwc(hwc.data(), w.data<float>(), O, C, K, K);
  int8_ = std::make_shared<const QWeight>(pack_qweight(hwc.data(), O, K * K * C));
}

Tensor MaxPool2d::forward(const Tensor& x) const { return max_pool2d(x, kernel, stride, padding); }

Tensor AvgPool2d::forward(const Tensor& x) const { return avg_pool2d(x, kernel, stride, padding); }

Tensor GlobalAvgPool::forward(const Tensor& x) const { return global_avg_pool2d(x); }

}  // namespace focus
