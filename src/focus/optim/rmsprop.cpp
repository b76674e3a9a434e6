// RMSprop: option checks and the fused update loop (see rmsprop.hpp).
#include "focus/optim/rmsprop.hpp"

#include <cmath>

#include "focus/optim/torch_ops.hpp"

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

// buf / ga are used only with MOMENTUM / CENTERED.
template <class T, bool DECAY, bool CENTERED, bool MOMENTUM>
FOCUS_EXACT_FP void rmsprop_kernel(T* __restrict p, const T* __restrict g, T* __restrict sq,
                                   T* __restrict buf, T* __restrict ga, int64_t n,
                                   const RMSpropOptions& o, double lr) {
  using namespace torch_ops;
  const T alpha = static_cast<T>(o.alpha), one_alpha = static_cast<T>(1.0 - o.alpha);
  const T eps = static_cast<T>(o.eps), wd = static_cast<T>(o.weight_decay);
  const T mom = static_cast<T>(o.momentum), neg_lr = static_cast<T>(-lr);
#pragma omp parallel for simd if (parallel : n > kOptimParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if constexpr (DECAY) d = add(d, p[i], wd);        // grad = grad.add(param, alpha=wd)
    const T s = addcmul(sq[i] * alpha, d, d, one_alpha);  // square_avg.mul_(a).addcmul_(g, g, 1-a)
    sq[i] = s;
    T avg;
    if constexpr (CENTERED) {
      const T a = add(ga[i] * alpha, d, one_alpha);   // grad_avg.mul_(a).add_(grad, alpha=1-a)
      ga[i] = a;
      avg = std::sqrt(addcmul(s, a, a, T(-1))) + eps; // square_avg.addcmul(ga, ga, -1).sqrt_() + eps
    } else {
      avg = std::sqrt(s) + eps;                       // square_avg.sqrt().add_(eps)
    }
    if constexpr (MOMENTUM) {
      const T b = addcdiv(buf[i] * mom, d, avg, T(1));  // buf.mul_(mom).addcdiv_(grad, avg)
      buf[i] = b;
      p[i] = add(p[i], b, neg_lr);                    // param.add_(buf, alpha=-lr)
    } else {
      p[i] = addcdiv(p[i], d, avg, neg_lr);           // param.addcdiv_(grad, avg, value=-lr)
    }
  }
}

}  // namespace

RMSprop::RMSprop(NamedTensors params, const RMSpropOptions& opt)
    : Optimizer(std::move(params), opt.lr, slots_for(opt)), opt_(opt) {}

void RMSprop::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, int64_t) {
  dispatch_float(param.dtype(), "RMSprop", [&]<class T>() {
    const bool mom = opt_.momentum > 0.0;
    T* buf = mom ? slots[1].data<T>() : nullptr;
    T* ga = opt_.centered ? slots[mom ? 2 : 1].data<T>() : nullptr;
    with_flags([&]<bool DECAY, bool CENTERED, bool MOMENTUM>() {
      rmsprop_kernel<T, DECAY, CENTERED, MOMENTUM>(param.data<T>(), grad.data<T>(),
                                                   slots[0].data<T>(), buf, ga, param.numel(),
                                                   opt_, lr());
    }, opt_.weight_decay != 0.0, opt_.centered, mom);
  });
}

}  // namespace focus
