// Linear and Embedding layers (see linear.hpp).
#include "focus/nn/linear.hpp"

#include "focus/autograd/node.hpp"
#include "focus/nn/init.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/quantized.hpp"
#include "focus/nn/quant_probe.hpp"

namespace focus {

Linear::Linear(int64_t in, int64_t out, Rng& rng, bool has_bias)
    : weight(
          register_parameter("weight", init::uniform({init::positive(out, "Linear: out_features"),
                                                      init::positive(in, "Linear: in_features")},
                                                     init::fan_in_bound(in), rng))),
      bias(has_bias ? register_parameter("bias", init::uniform({out}, init::fan_in_bound(in), rng))
                    : Tensor()) {}

void InferenceWeights::set(const Tensor& weight, DType dtype) {
  int8.reset();
  if (dtype == DType::I8 && weight.dtype() == DType::F32) {
    packed = PackedWeight();
    widened = Tensor();
    const Tensor w = weight.contiguous();  // (OUT, IN)
    int8 = std::make_shared<const QWeight>(pack_qweight(w.data<float>(), w.size(0), w.size(1)));
    return;
  }
  const bool on = dtype == DType::BF16 && weight.dtype() == DType::F32;
  packed = on ? pack_weight(weight, DType::BF16) : PackedWeight();
  widened = on ? weight.to(DType::BF16).to(DType::F32) : Tensor();
}

Tensor InferenceWeights::forward(const Tensor& weight, const Tensor& x, const Tensor& bias) const {
  if (int8 && !grad_enabled()) return linear_int8(x, *int8, bias);
  if (!packed.defined() || grad_enabled()) return linear(x, weight, bias);
  const int64_t rows = x.dim() == 0 || x.shape().back() == 0 ? 0 : x.numel() / x.shape().back();
  return rows <= kPackedRows ? linear(x, packed, bias) : linear(x, widened, bias);
}

Tensor Linear::forward(const Tensor& x) const {
  Tensor y = inference_.forward(weight, x, bias);
  if (QuantProbe* p = quant_probe(); p && inference_.int8 && !grad_enabled())
    p->add(this, y, linear(x, weight, bias));
  return y;
}
void Linear::on_inference_dtype(DType dtype) { inference_.set(weight, dtype); }

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Rng& rng)
    : weight(register_parameter(
          "weight", init::normal({init::positive(num_embeddings, "Embedding: num_embeddings"),
                                  init::positive(dim, "Embedding: dim")},
                                 1.0, rng))) {}

Tensor Embedding::forward(const Tensor& indices) const { return embedding(weight, indices); }
Tensor Embedding::project(const Tensor& h) const { return inference_.forward(weight, h, Tensor()); }
void Embedding::on_inference_dtype(DType dtype) {
  inference_.set(weight, projection_ ? dtype : DType::F32);
}

}  // namespace focus
