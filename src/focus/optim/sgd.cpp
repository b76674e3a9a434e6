// SGD: option checks and the fused update loop (see sgd.hpp).
#include "focus/optim/sgd.hpp"

#include "focus/optim/torch_ops.hpp"

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

// One pass over n elements. MOMENTUM: buf holds the momentum buffer; FIRST: its first update.
template <class T, bool DECAY, bool MOMENTUM, bool NESTEROV, bool FIRST>
FOCUS_EXACT_FP void sgd_kernel(T* __restrict p, const T* __restrict g, T* __restrict buf,
                               int64_t n, const SGDOptions& o, double lr) {
  using namespace torch_ops;
  const T wd = static_cast<T>(o.weight_decay), mom = static_cast<T>(o.momentum);
  const T keep = static_cast<T>(1.0 - o.dampening), neg_lr = static_cast<T>(-lr);
#pragma omp parallel for simd if (parallel : n > kOptimParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if constexpr (DECAY) d = add(d, p[i], wd);         // d_p = d_p.add(param, alpha=wd)
    if constexpr (MOMENTUM) {
      T b;
      if constexpr (FIRST) b = d;                      // buf = clone(d_p)
      else b = add(buf[i] * mom, d, keep);             // buf.mul_(mom).add_(d_p, alpha=1-damp)
      buf[i] = b;
      if constexpr (NESTEROV) d = add(d, b, mom);      // d_p = d_p.add(buf, alpha=mom)
      else d = b;
    }
    p[i] = add(p[i], d, neg_lr);                       // param.add_(d_p, alpha=-lr)
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
    T* buf = slots.empty() ? nullptr : slots[0].data<T>();
    with_flags([&]<bool DECAY, bool MOMENTUM, bool NESTEROV, bool FIRST>() {
      sgd_kernel<T, DECAY, MOMENTUM, NESTEROV, FIRST>(param.data<T>(), grad.data<T>(), buf,
                                                      param.numel(), opt_, lr());
    }, opt_.weight_decay != 0.0, buf != nullptr, opt_.nesterov, step == 1);
  });
}

}  // namespace focus
