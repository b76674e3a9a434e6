// Softmax / log-softmax kernels (see softmax.hpp). Rows (I == 1): one pass for the max, one for
// the exps and their sum, one to scale; parallel over rows. Strided (I > 1): tasks of
// (o, chunk of inner elements) doing the same passes with the inner chunk as the vector axis.
// Sums accumulate in double: in float each small term added to a sum near 1 costs up to half an
// ulp, ~1e-6 relative error over a few hundred terms.
#include "focus/kernels/softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "focus/kernels/unary.hpp"

namespace focus {

namespace {

constexpr int64_t kParallel = 1 << 14;  // elements of work below which everything is serial
constexpr int64_t kChunk = 256;         // inner elements per strided task

template <class T, class M>
void row_forward(T* __restrict y, const T* __restrict x, int64_t N, bool log) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t n = 0; n < N; ++n) m = x[n] > m ? x[n] : m;
  double s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t n = 0; n < N; ++n) s += M::exp(x[n] - m);
    const T ls = static_cast<T>(std::log(s));
#pragma omp simd
    for (int64_t n = 0; n < N; ++n) y[n] = (x[n] - m) - ls;  // not x - (m + ls): exact for big x
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t n = 0; n < N; ++n) {
      const T e = M::exp(x[n] - m);
      y[n] = e;
      s += e;
    }
    const T inv = static_cast<T>(1 / s);
#pragma omp simd
    for (int64_t n = 0; n < N; ++n) y[n] *= inv;
  }
}

template <class T, class M>
void row_backward(T* __restrict dx, const T* __restrict dy, const T* __restrict y, int64_t N,
                  bool log) {
  double s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t n = 0; n < N; ++n) s += dy[n];
#pragma omp simd
    for (int64_t n = 0; n < N; ++n) dx[n] = dy[n] - M::exp(y[n]) * static_cast<T>(s);
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t n = 0; n < N; ++n) s += dy[n] * y[n];
#pragma omp simd
    for (int64_t n = 0; n < N; ++n) dx[n] = y[n] * (dy[n] - static_cast<T>(s));
  }
}

// One strided task: columns [i0, i0 + w) of outer slice xo (N, I).
template <class T, class M>
void strided_forward(T* __restrict yo, const T* __restrict xo, int64_t N, int64_t I, int64_t i0,
                     int64_t w, bool log) {
  T m[kChunk], r[kChunk];  // per column: max, then log-sum or 1 / sum
  double s[kChunk];
  std::fill(m, m + w, -std::numeric_limits<T>::infinity());
  std::fill(s, s + w, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const T* xn = xo + n * I + i0;
#pragma omp simd
    for (int64_t i = 0; i < w; ++i) m[i] = xn[i] > m[i] ? xn[i] : m[i];
  }
  for (int64_t n = 0; n < N; ++n) {
    const T* xn = xo + n * I + i0;
    T* yn = yo + n * I + i0;
#pragma omp simd
    for (int64_t i = 0; i < w; ++i) {
      const T e = M::exp(xn[i] - m[i]);
      if (!log) yn[i] = e;
      s[i] += e;
    }
  }
  for (int64_t i = 0; i < w; ++i) r[i] = static_cast<T>(log ? std::log(s[i]) : 1 / s[i]);
  for (int64_t n = 0; n < N; ++n) {
    const T* xn = xo + n * I + i0;
    T* yn = yo + n * I + i0;
    if (log) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) yn[i] = (xn[i] - m[i]) - r[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) yn[i] *= r[i];
    }
  }
}

template <class T, class M>
void strided_backward(T* __restrict dxo, const T* __restrict dyo, const T* __restrict yo, int64_t N,
                      int64_t I, int64_t i0, int64_t w, bool log) {
  double acc[kChunk];
  T s[kChunk];
  std::fill(acc, acc + w, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const T* g = dyo + n * I + i0;
    const T* yn = yo + n * I + i0;
#pragma omp simd
    for (int64_t i = 0; i < w; ++i) acc[i] += log ? g[i] : g[i] * yn[i];
  }
  for (int64_t i = 0; i < w; ++i) s[i] = static_cast<T>(acc[i]);
  for (int64_t n = 0; n < N; ++n) {
    const T* g = dyo + n * I + i0;
    const T* yn = yo + n * I + i0;
    T* d = dxo + n * I + i0;
    if (log) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) d[i] = g[i] - M::exp(yn[i]) * s[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) d[i] = yn[i] * (g[i] - s[i]);
    }
  }
}

// Runs f(o) over rows, or f(o, i0, w) over strided tasks; in parallel when the work is large.
template <class Rows, class Strided>
void drive(int64_t O, int64_t N, int64_t I, Rows&& rows, Strided&& strided) {
  const bool par = O * N * I > kParallel;
  if (I == 1) {
#pragma omp parallel for schedule(static) if (par && O > 1)
    for (int64_t o = 0; o < O; ++o) rows(o);
    return;
  }
  const int64_t chunks = (I + kChunk - 1) / kChunk, tasks = O * chunks;
#pragma omp parallel for schedule(static) if (par && tasks > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / chunks, i0 = (t % chunks) * kChunk;
    strided(o, i0, std::min(kChunk, I - i0));
  }
}

}  // namespace

template <class T>
void softmax_forward(T* y, const T* x, int64_t O, int64_t N, int64_t I, bool log) {
  dispatch_math([&]<class M>() {
    drive(
        O, N, I, [&](int64_t o) { row_forward<T, M>(y + o * N, x + o * N, N, log); },
        [&](int64_t o, int64_t i0, int64_t w) {
          strided_forward<T, M>(y + o * N * I, x + o * N * I, N, I, i0, w, log);
        });
  });
}

template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t O, int64_t N, int64_t I, bool log) {
  dispatch_math([&]<class M>() {
    drive(
        O, N, I, [&](int64_t o) { row_backward<T, M>(dx + o * N, dy + o * N, y + o * N, N, log); },
        [&](int64_t o, int64_t i0, int64_t w) {
          strided_backward<T, M>(dx + o * N * I, dy + o * N * I, y + o * N * I, N, I, i0, w, log);
        });
  });
}

template void softmax_forward<float>(float*, const float*, int64_t, int64_t, int64_t, bool);
template void softmax_forward<double>(double*, const double*, int64_t, int64_t, int64_t, bool);
template void softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t,
                                      bool);
template void softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t,
                                       int64_t, bool);

}  // namespace focus
