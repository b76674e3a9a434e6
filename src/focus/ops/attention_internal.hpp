// Internal to ops/attention*.cpp: the fused attention op, called by scaled_dot_product_attention
// after it has checked the inputs.
#pragma once
#include "focus/ops/attention.hpp"

namespace focus::detail {

Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& opt, Tensor* weights_out);

}  // namespace focus::detail
