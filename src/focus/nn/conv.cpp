// Convolution and pooling layers (see conv.hpp).
#include "focus/nn/conv.hpp"

#include "focus/nn/init.hpp"
#include "focus/ops/conv.hpp"

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

Tensor Conv2d::forward(const Tensor& x) const { return conv2d(x, weight, bias, stride, padding); }

Tensor MaxPool2d::forward(const Tensor& x) const { return max_pool2d(x, kernel, stride, padding); }

Tensor AvgPool2d::forward(const Tensor& x) const { return avg_pool2d(x, kernel, stride, padding); }

Tensor GlobalAvgPool::forward(const Tensor& x) const { return global_avg_pool2d(x); }

}  // namespace focus
