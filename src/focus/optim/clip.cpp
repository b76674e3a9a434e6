// Global-norm gradient clipping (see clip.hpp).
#include "focus/optim/clip.hpp"

#include <cmath>

#include "focus/optim/optimizer.hpp"

namespace focus {

namespace {

constexpr int64_t kBlock = 8192;  // elements per partial sum: fixes the summation order

// Sum of squares of a contiguous array: block sums in parallel, then added in block order.
template <class T>
double sum_squares(const T* x, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
#pragma omp parallel for if (parallel : n > kOptimParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b * kBlock; i < end; ++i) s += static_cast<double>(x[i]) * x[i];
    partial[b] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

template <class T>
void scale(T* x, int64_t n, T factor) {
#pragma omp parallel for simd if (parallel : n > kOptimParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * factor;
}

}  // namespace

double grad_norm(const std::vector<Tensor>& params) {
  double total = 0.0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor c = g.contiguous();
    total += dispatch_float(c.dtype(), "grad_norm", [&]<class T>() {
      return sum_squares(c.data<T>(), c.numel());
    });
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  FOCUS_CHECK(max_norm >= 0.0, ValueError, "clip_grad_norm: invalid max_norm {}", max_norm);
  const double total = grad_norm(params);
  const double factor = max_norm / (total + 1e-6);
  if (factor >= 1.0) return total;  // torch multiplies by the clamped 1.0: a no-op
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch_float(g.dtype(), "clip_grad_norm", [&]<class T>() {
      if (g.is_contiguous()) {
        scale(g.data<T>(), g.numel(), static_cast<T>(factor));
      } else {
        Tensor c = g.clone();
        scale(c.data<T>(), c.numel(), static_cast<T>(factor));
        g.copy_(c);
      }
    });
  }
  return total;
}

}  // namespace focus
