// SGD: option checks and the fused update loop (see sgd.hpp).
#include "focus/optim/sgd.hpp"

namespace focus {

namespace {

const SGDOptions& checked(const SGDOptions& o) {
  FOCUS_CHECK(o.momentum >= 0.0, ValueError, "SGD: invalid momentum {}", o.momentum);
  FOCUS_CHECK(o.weight_decay >= 0.0, ValueError, "SGD: invalid weight_decay {}", o.weight_decay);
  FOCUS_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0), ValueError,
              "SGD: Nesterov momentum requires momentum > 0 and dampening = 0 (got {}, {})",
              o.momentum, o.dampening);
  return o;
}

// One pass over n elements. buf is null when momentum == 0; `first` is the buffer's first update.
template <class T>
void sgd_kernel(T* __restrict p, const T* __restrict g, T* __restrict buf, int64_t n,
                const SGDOptions& o, double lr, bool first) {
  const T wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum);
  const T keep = static_cast<T>(1.0 - o.dampening), neg_lr = static_cast<T>(-lr);
  const bool decay = o.weight_decay != 0.0, nesterov = o.nesterov;
#pragma omp parallel for simd if (n > kOptimParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if (decay) d = d + wd * p[i];
    if (buf) {
      const T b = first ? d : buf[i] * mom + keep * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    p[i] = p[i] + neg_lr * d;
  }
}

}  // namespace

SGD::SGD(NamedTensors params, const SGDOptions& opt)
    : Optimizer(std::move(params), opt.lr,
                checked(opt).momentum != 0.0 ? std::vector<std::string>{"momentum_buffer"}
                                             : std::vector<std::string>{}),
      opt_(opt) {}

void SGD::update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, int64_t step) {
  dispatch_float(param.dtype(), "SGD", [&]<class T>() {
    sgd_kernel<T>(param.data<T>(), grad.data<T>(), slots.empty() ? nullptr : slots[0].data<T>(),
                  param.numel(), opt_, lr(), step == 1);
  });
}

}  // namespace focus
