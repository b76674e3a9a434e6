// Element-wise forms of the torch tensor ops that torch.optim's update rules are written in,
// rounded exactly as PyTorch 1.13's CPU kernels round them (checked bit for bit against Debian's
// torch 1.13 on an AVX2/AVX-512 CPU): add with alpha and addcmul end in one fused multiply-add,
// addcdiv rounds the product and the quotient, mul rounds. Scalars arrive already rounded to T.
// Update loops using these must be compiled without implicit FMA contraction (FOCUS_EXACT_FP),
// or the compiler would fuse the roundings these ops keep apart.
#pragma once
#include <cmath>
#include <utility>

// On a function: no implicit a * b + c contraction inside it (GCC; OpenMP-outlined loops inherit
// it). Clang contracts only within one expression, which these helpers never leave to it.
#if defined(__GNUC__) && !defined(__clang__)
#define FOCUS_EXACT_FP __attribute__((optimize("fp-contract=off")))
#else
#define FOCUS_EXACT_FP
#endif

namespace focus::torch_ops {

// self.add(other, alpha=alpha)
template <class T> inline T add(T self, T other, T alpha) { return std::fma(alpha, other, self); }
// self.addcmul(t1, t2, value=value)
template <class T> inline T addcmul(T self, T t1, T t2, T value) {
  return std::fma(value * t1, t2, self);
}
// self.addcdiv(t1, t2, value=value)
template <class T> inline T addcdiv(T self, T t1, T t2, T value) { return self + value * t1 / t2; }

}  // namespace focus::torch_ops

namespace focus {

// with_flags(f, a, b, ...) calls f.template operator()<a, b, ...>() with the runtime bools turned
// into template arguments, so each update loop is compiled branch-free for its options (a loop
// with invariant branches gets unswitched into versions that do not all vectorise).
template <bool... Done, class F>
decltype(auto) with_flags(F&& f) {
  return f.template operator()<Done...>();
}
template <bool... Done, class F, class... Rest>
decltype(auto) with_flags(F&& f, bool first, Rest... rest) {
  if (first) return with_flags<Done..., true>(std::forward<F>(f), rest...);
  return with_flags<Done..., false>(std::forward<F>(f), rest...);
}

}  // namespace focus
