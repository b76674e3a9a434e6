// Loss kernels (see loss.hpp). cross_entropy works row by row (max, sum of exps, sum of logits)
// in parallel over rows; the pointwise losses are flat loops. Loss sums accumulate in double.
#include "focus/kernels/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "focus/kernels/unary.hpp"

namespace focus {

namespace {
constexpr int64_t kParallel = 1 << 14;  // elements of work below which everything is serial
}  // namespace

template <class T>
double cross_entropy_forward(T* stats, const T* x, const int64_t* t, int64_t N, int64_t C,
                             double eps, int64_t ignore) {
  return dispatch_math([&]<class M>() {
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (N * C > kParallel)
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = x + n * C;
      T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
      for (int64_t c = 0; c < C; ++c) m = xr[c] > m ? xr[c] : m;
      double s = 0, sx = 0;  // sum of exps, sum of logits
#pragma omp simd reduction(+ : s, sx)
      for (int64_t c = 0; c < C; ++c) {
        s += M::exp(xr[c] - m);
        sx += xr[c];
      }
      const T ls = static_cast<T>(std::log(s));
      stats[2 * n] = m;
      stats[2 * n + 1] = ls;
      if (t[n] == ignore) continue;
      total += (1 - eps) * double(m - xr[t[n]]) + eps * (double(m) - sx / double(C)) + double(ls);
    }
    return total;
  });
}

template <class T>
void cross_entropy_backward(T* dx, const T* x, const T* stats, const int64_t* t, int64_t N,
                            int64_t C, double eps, int64_t ignore, double scale) {
  dispatch_math([&]<class M>() {
    const T sc = static_cast<T>(scale), off = static_cast<T>(eps / double(C));
    const T hit = static_cast<T>(scale * (1 - eps));
#pragma omp parallel for schedule(static) if (N * C > kParallel)
    for (int64_t n = 0; n < N; ++n) {
      T* d = dx + n * C;
      if (t[n] == ignore) {
        std::fill(d, d + C, T(0));
        continue;
      }
      const T* xr = x + n * C;
      const T m = stats[2 * n], ls = stats[2 * n + 1];
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) d[c] = sc * (M::exp((xr[c] - m) - ls) - off);
      d[t[n]] -= hit;
    }
  });
}

template <class T>
double bce_with_logits_forward(const T* x, const T* y, int64_t n) {
  return dispatch_math([&]<class M>() {
    double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (parallel : n > kParallel)
    for (int64_t i = 0; i < n; ++i) {
      const T v = x[i];
      total += (v > T(0) ? v : T(0)) - v * y[i] + std::log1p(M::exp(-std::abs(v)));
    }
    return total;
  });
}

template <class T>
void bce_with_logits_backward(T* dx, T* dy, const T* x, const T* y, int64_t n, double scale) {
  dispatch_math([&]<class M>() {
    const T sc = static_cast<T>(scale);
    if (dx) {
#pragma omp parallel for simd if (parallel : n > kParallel)
      for (int64_t i = 0; i < n; ++i) dx[i] = sc * (T(1) / (T(1) + M::exp(-x[i])) - y[i]);
    }
    if (dy) {
#pragma omp parallel for simd if (parallel : n > kParallel)
      for (int64_t i = 0; i < n; ++i) dy[i] = -sc * x[i];
    }
  });
}

template <class T>
double mse_forward(const T* x, const T* y, int64_t n) {
  double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (parallel : n > kParallel)
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x[i]) - double(y[i]);
    total += d * d;
  }
  return total;
}

template <class T>
void mse_backward(T* dx, T* dy, const T* x, const T* y, int64_t n, double scale) {
  const T two_sc = static_cast<T>(2 * scale);
  if (dx) {
#pragma omp parallel for simd if (parallel : n > kParallel)
    for (int64_t i = 0; i < n; ++i) dx[i] = two_sc * (x[i] - y[i]);
  }
  if (dy) {
#pragma omp parallel for simd if (parallel : n > kParallel)
    for (int64_t i = 0; i < n; ++i) dy[i] = two_sc * (y[i] - x[i]);
  }
}

#define FOCUS_LOSS_INSTANTIATE(T)                                                                  \
  template double cross_entropy_forward<T>(T*, const T*, const int64_t*, int64_t, int64_t, double, \
                                           int64_t);                                               \
  template void cross_entropy_backward<T>(T*, const T*, const T*, const int64_t*, int64_t,         \
                                          int64_t, double, int64_t, double);                       \
  template double bce_with_logits_forward<T>(const T*, const T*, int64_t);                         \
  template void bce_with_logits_backward<T>(T*, T*, const T*, const T*, int64_t, double);          \
  template double mse_forward<T>(const T*, const T*, int64_t);                                     \
  template void mse_backward<T>(T*, T*, const T*, const T*, int64_t, double);
FOCUS_LOSS_INSTANTIATE(float)
FOCUS_LOSS_INSTANTIATE(double)
#undef FOCUS_LOSS_INSTANTIATE

}  // namespace focus
