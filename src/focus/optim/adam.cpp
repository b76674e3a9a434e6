// Adam / AdamW: option checks and the fused update loop (see adam.hpp).
#include "focus/optim/adam.hpp"

#include <cmath>

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

template <class T>
void adam_kernel(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                 int64_t n, const AdamOptions& o, double lr, bool decoupled, int64_t step) {
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
  const T neg_step_size = static_cast<T>(-(lr / bias_correction1));
  const T bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T b1 = static_cast<T>(o.beta1), one_b1 = static_cast<T>(1.0 - o.beta1);
  const T b2 = static_cast<T>(o.beta2), one_b2 = static_cast<T>(1.0 - o.beta2);
  const T eps = static_cast<T>(o.eps);
  const T wd = static_cast<T>(o.weight_decay), shrink = static_cast<T>(1.0 - lr * o.weight_decay);
  const bool l2 = !decoupled && o.weight_decay != 0.0;
#pragma omp parallel for simd if (n > kOptimParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T pi = p[i], d = g[i];
    if (decoupled) pi = pi * shrink;
    if (l2) d = d + wd * pi;
    const T mi = m[i] * b1 + one_b1 * d;
    const T vi = v[i] * b2 + one_b2 * d * d;
    m[i] = mi;
    v[i] = vi;
    const T denom = std::sqrt(vi) / bc2_sqrt + eps;
    p[i] = pi + neg_step_size * mi / denom;
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
    adam_kernel<T>(param.data<T>(), grad.data<T>(), slots[0].data<T>(), slots[1].data<T>(),
                   param.numel(), opt_, lr(), decoupled_, step);
  });
}

}  // namespace focus
