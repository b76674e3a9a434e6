// RMSprop: option checks and the fused update loop (see rmsprop.hpp).
#include "focus/optim/rmsprop.hpp"

#include <cmath>

namespace focus {

namespace {

std::vector<std::string> slots_for(const RMSpropOptions& o) {
  FOCUS_CHECK(o.alpha >= 0.0, ValueError, "RMSprop: invalid alpha {}", o.alpha);
  FOCUS_CHECK(o.eps >= 0.0, ValueError, "RMSprop: invalid eps {}", o.eps);
  FOCUS_CHECK(o.weight_decay >= 0.0, ValueError, "RMSprop: invalid weight_decay {}",
              o.weight_decay);
  FOCUS_CHECK(o.momentum >= 0.0, ValueError, "RMSprop: invalid momentum {}", o.momentum);
  std::vector<std::string> s{"square_avg"};
  if (o.momentum > 0.0) s.push_back("momentum_buffer");
  if (o.centered) s.push_back("grad_avg");
  return s;
}

// buf / ga are null when momentum == 0 / not centered.
template <class T>
void rmsprop_kernel(T* __restrict p, const T* __restrict g, T* __restrict sq, T* __restrict buf,
                    T* __restrict ga, int64_t n, const RMSpropOptions& o, double lr) {
  const T alpha = static_cast<T>(o.alpha), one_alpha = static_cast<T>(1.0 - o.alpha);
  const T eps = static_cast<T>(o.eps), wd = static_cast<T>(o.weight_decay);
  const T mom = static_cast<T>(o.momentum), neg_lr = static_cast<T>(-lr), neg_one = T(-1);
  const bool decay = o.weight_decay != 0.0;
#pragma omp parallel for simd if (n > kOptimParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if (decay) d = d + wd * p[i];
    const T s = sq[i] * alpha + one_alpha * d * d;
    sq[i] = s;
    T avg;
    if (ga) {
      const T a = ga[i] * alpha + one_alpha * d;
      ga[i] = a;
      avg = std::sqrt(s + neg_one * a * a) + eps;
    } else {
      avg = std::sqrt(s) + eps;
    }
    if (buf) {
      const T b = buf[i] * mom + d / avg;
      buf[i] = b;
      p[i] = p[i] + neg_lr * b;
    } else {
      p[i] = p[i] + neg_lr * d / avg;
    }
  }
}

}  // namespace

RMSprop::RMSprop(NamedTensors params, const RMSpropOptions& opt)
    : Optimizer(std::move(params), opt.lr, slots_for(opt)), opt_(opt) {}

void RMSprop::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, int64_t) {
  dispatch_float(param.dtype(), "RMSprop", [&]<class T>() {
    const bool mom = opt_.momentum > 0.0;
    rmsprop_kernel<T>(param.data<T>(), grad.data<T>(), slots[0].data<T>(),
                      mom ? slots[1].data<T>() : nullptr,
                      opt_.centered ? slots[mom ? 2 : 1].data<T>() : nullptr, param.numel(), opt_,
                      lr());
  });
}

}  // namespace focus
