// Convolution and pooling layers on NCHW tensors: Conv2d (square kernel, groups = 1; torch's
// default init), and thin parameter-free wrappers over the pooling ops.
#pragma once
#include <memory>

#include "focus/kernels/qgemm.hpp"
#include "focus/nn/module.hpp"

namespace focus {

class Rng;
class BatchNorm2d;

class Conv2d : public Module {
 public:
  // weight (O, C, K, K) and bias (O) uniform in +-1/sqrt(C*K*K), as torch.nn.Conv2d.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Rng& rng, int64_t stride = 1,
         int64_t padding = 0, bool bias = true);
  // (N, C, H, W) -> (N, O, H', W'); under NoGradGuard through the int8 weight when
  // set_inference_dtype(I8) made one (ops/quantized.hpp), else the F32 weight (BF16: no copy).
  Tensor forward(const Tensor& x) const;
  bool int8_active() const { return int8_ != nullptr; }
  // relu(bn(forward(x))) (relu optional), the same values as the three layers in turn; with an
  // int8 weight under NoGradGuard and bn in eval mode, one pass: bn's running statistics fold
  // into the int8 product's per-channel scale and bias, the ReLU into its epilogue.
  Tensor forward_bn(const Tensor& x, BatchNorm2d& bn, bool relu) const;

  const Tensor weight;  // (O, C, K, K)
  const Tensor bias;    // (O), undefined without bias
  const int64_t stride, padding;

 protected:
  void on_inference_dtype(DType dtype) override;

 private:
  std::shared_ptr<const QWeight> int8_;  // (O, C*K*K) packed, or null
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0)  // stride -1: kernel
      : kernel(kernel), stride(stride), padding(padding) {}
  Tensor forward(const Tensor& x) const;
  const int64_t kernel, stride, padding;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0)
      : kernel(kernel), stride(stride), padding(padding) {}
  Tensor forward(const Tensor& x) const;
  const int64_t kernel, stride, padding;
};

class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) const;  // (N, C, H, W) -> (N, C)
};

}  // namespace focus
