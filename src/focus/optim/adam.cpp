// Adam / AdamW: option checks and the fused update loop (see adam.hpp).
#include "focus/optim/adam.hpp"

#include <cmath>

#include "focus/optim/torch_ops.hpp"

namespace focus {

namespace {

const AdamOptions& checked(const AdamOptions& o, const char* who) {
  FOCUS_CHECK(o.eps >= 0.0, ValueError, "{}: invalid eps {}", who, o.eps);
  FOCUS_CHECK(o.beta1 >= 0.0 && o.beta1 < 1.0, ValueError, "{}: invalid beta1 {}", who, o.beta1);
  FOCUS_CHECK(o.beta2 >= 0.0 && o.beta2 < 1.0, ValueError, "{}: invalid beta2 {}", who, o.beta2);
  FOCUS_CHECK(o.weight_decay >= 0.0, ValueError, "{}: invalid weight_decay {}", who,
              o.weight_decay);
  return o;
}

// DECOUPLED: AdamW's decay of the parameter; L2: Adam's decay added to the gradient.
template <class T, bool DECOUPLED, bool L2>
FOCUS_EXACT_FP void adam_kernel(T* __restrict p, const T* __restrict g, T* __restrict m,
                                T* __restrict v, int64_t n, const AdamOptions& o, double lr,
                                int64_t step) {
  using namespace torch_ops;
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
  const T neg_step_size = static_cast<T>(-(lr / bias_correction1));
  const T bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T b1 = static_cast<T>(o.beta1), one_b1 = static_cast<T>(1.0 - o.beta1);
  const T b2 = static_cast<T>(o.beta2), one_b2 = static_cast<T>(1.0 - o.beta2);
  const T eps = static_cast<T>(o.eps);
  const T wd = static_cast<T>(o.weight_decay), shrink = static_cast<T>(1.0 - lr * o.weight_decay);
#pragma omp parallel for simd if (parallel : n > kOptimParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T pi = p[i], d = g[i];
    if constexpr (DECOUPLED) pi = pi * shrink;        // AdamW: param.mul_(1 - lr * wd)
    if constexpr (L2) d = add(d, pi, wd);             // Adam: grad = grad.add(param, alpha=wd)
    const T mi = add(m[i] * b1, d, one_b1);           // exp_avg.mul_(b1).add_(grad, alpha=1-b1)
    const T vi = addcmul(v[i] * b2, d, d, one_b2);    // exp_avg_sq.mul_(b2).addcmul_(grad, grad, 1-b2)
    m[i] = mi;
    v[i] = vi;
    const T denom = std::sqrt(vi) / bc2_sqrt + eps;   // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
    p[i] = addcdiv(pi, mi, denom, neg_step_size);     // param.addcdiv_(exp_avg, denom, -step_size)
  }
}

}  // namespace

Adam::Adam(NamedTensors params, const AdamOptions& opt) : Adam(std::move(params), opt, false) {}

Adam::Adam(NamedTensors params, const AdamOptions& opt, bool decoupled)
    : Optimizer(std::move(params), checked(opt, decoupled ? "AdamW" : "Adam").lr,
                {"exp_avg", "exp_avg_sq"}),
      opt_(opt), decoupled_(decoupled) {}

void Adam::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, int64_t step) {
  dispatch_float(param.dtype(), name(), [&]<class T>() {
    with_flags([&]<bool DECOUPLED, bool L2>() {
      adam_kernel<T, DECOUPLED, L2>(param.data<T>(), grad.data<T>(), slots[0].data<T>(),
                                    slots[1].data<T>(), param.numel(), opt_, lr(), step);
    }, decoupled_, !decoupled_ && opt_.weight_decay != 0.0);
  });
}

}  // namespace focus
