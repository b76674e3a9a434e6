// Reductions over the middle axis of (O, R, I) (see reduce.hpp). Two loop shapes:
//   I == 1: one contiguous row of R per o (sum of all, last-dim reductions); when there are too
//           few rows to share out, the rows run one after another with the threads inside each.
//   I > 1:  tasks (o, chunk of up to kChunk inner elements), each accumulating its chunk over r
//           in a double buffer, so the inner loop is contiguous and vectorises.
#include "focus/kernels/reduce.hpp"

#include <algorithm>

#include "focus/kernels/cpu.hpp"

namespace focus {

namespace {

constexpr int64_t kParallel = 1 << 15;  // elements of work below which everything is serial
constexpr int64_t kChunk = 512;         // inner elements per task

// Calls f(o, i0, i1) for every task covering (O, I); in parallel when the work is large.
template <class F>
void for_tasks(int64_t O, int64_t R, int64_t I, F&& f) {
  const int64_t chunks = (I + kChunk - 1) / kChunk, tasks = O * chunks;
#pragma omp parallel for schedule(static) if (O * R * I > kParallel && tasks > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / chunks, i0 = (t % chunks) * kChunk;
    f(o, i0, std::min(I, i0 + kChunk));
  }
}

// For I == 1: true when rows should run one after another with threads inside each row.
bool threads_inside_rows(int64_t O, int64_t R) {
  return O * R > kParallel && O < 2 * num_threads();
}

// sum_r f(x[r]) in double, threaded inside the row if `inside` (a branch, not an if clause:
// an inactive parallel region still costs a team start per row).
template <class T, class F>
double row_sum(const T* x, int64_t R, bool inside, F f) {
  double s = 0;
  if (inside) {
#pragma omp parallel for simd reduction(+ : s)
    for (int64_t r = 0; r < R; ++r) s += f(x[r]);
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t r = 0; r < R; ++r) s += f(x[r]);
  }
  return s;
}

// Runs g(o, inside) for every row o: rows in parallel, or serially with `inside` set.
template <class G>
void for_rows(int64_t O, int64_t R, G&& g) {
  if (threads_inside_rows(O, R)) {
    for (int64_t o = 0; o < O; ++o) g(o, true);
    return;
  }
#pragma omp parallel for schedule(static) if (O * R > kParallel)
  for (int64_t o = 0; o < O; ++o) g(o, false);
}

}  // namespace

template <class T>
void sum_forward(T* y, const T* x, int64_t O, int64_t R, int64_t I, double scale) {
  if (I == 1) {
    for_rows(O, R, [&](int64_t o, bool inside) {
      y[o] = static_cast<T>(scale * row_sum(x + o * R, R, inside, [](T v) { return double(v); }));
    });
    return;
  }
  for_tasks(O, R, I, [&](int64_t o, int64_t i0, int64_t i1) {
    double acc[kChunk] = {};
    const int64_t w = i1 - i0;
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + (o * R + r) * I + i0;
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) acc[i] += xr[i];
    }
    for (int64_t i = 0; i < w; ++i) y[o * I + i0 + i] = static_cast<T>(scale * acc[i]);
  });
}

template <class T>
void sum_backward(T* dx, const T* dy, int64_t O, int64_t R, int64_t I, double scale) {
  const T s = static_cast<T>(scale);
  if (I == 1) {
    for_rows(O, R, [&](int64_t o, bool inside) {
      T* d = dx + o * R;
      const T v = s * dy[o];
      if (inside) {
#pragma omp parallel for simd
        for (int64_t r = 0; r < R; ++r) d[r] = v;
      } else {
#pragma omp simd
        for (int64_t r = 0; r < R; ++r) d[r] = v;
      }
    });
    return;
  }
#pragma omp parallel for schedule(static) if (O * R * I > kParallel)
  for (int64_t orow = 0; orow < O * R; ++orow) {
    const T* g = dy + (orow / R) * I;
    T* d = dx + orow * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) d[i] = s * g[i];
  }
}

template <class T>
void var_forward(T* y, const T* x, int64_t O, int64_t R, int64_t I, int64_t ddof) {
  const double inv_r = 1.0 / double(R), inv_dof = 1.0 / double(R - ddof);
  if (I == 1) {
    for_rows(O, R, [&](int64_t o, bool inside) {
      const T* xo = x + o * R;
      const double m = inv_r * row_sum(xo, R, inside, [](T v) { return double(v); });
      const double ss = row_sum(xo, R, inside, [m](T v) { return (v - m) * (v - m); });
      y[o] = static_cast<T>(ss * inv_dof);
    });
    return;
  }
  for_tasks(O, R, I, [&](int64_t o, int64_t i0, int64_t i1) {
    double mean[kChunk] = {}, ss[kChunk] = {};
    const int64_t w = i1 - i0;
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + (o * R + r) * I + i0;
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) mean[i] += xr[i];
    }
    for (int64_t i = 0; i < w; ++i) mean[i] *= inv_r;
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + (o * R + r) * I + i0;
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) ss[i] += (xr[i] - mean[i]) * (xr[i] - mean[i]);
    }
    for (int64_t i = 0; i < w; ++i) y[o * I + i0 + i] = static_cast<T>(ss[i] * inv_dof);
  });
}

template <class T>
void var_backward(T* dx, const T* dy, const T* x, int64_t O, int64_t R, int64_t I, int64_t ddof) {
  const double inv_r = 1.0 / double(R), two_over_dof = 2.0 / double(R - ddof);
  if (I == 1) {
    for_rows(O, R, [&](int64_t o, bool inside) {
      const T* xo = x + o * R;
      T* d = dx + o * R;
      const T m = static_cast<T>(inv_r * row_sum(xo, R, inside, [](T v) { return double(v); }));
      const T g = static_cast<T>(two_over_dof * dy[o]);
      if (inside) {
#pragma omp parallel for simd
        for (int64_t r = 0; r < R; ++r) d[r] = g * (xo[r] - m);
      } else {
#pragma omp simd
        for (int64_t r = 0; r < R; ++r) d[r] = g * (xo[r] - m);
      }
    });
    return;
  }
  for_tasks(O, R, I, [&](int64_t o, int64_t i0, int64_t i1) {
    double mean[kChunk] = {};
    T m[kChunk], g[kChunk];
    const int64_t w = i1 - i0;
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + (o * R + r) * I + i0;
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) mean[i] += xr[i];
    }
    for (int64_t i = 0; i < w; ++i) {
      m[i] = static_cast<T>(mean[i] * inv_r);
      g[i] = static_cast<T>(two_over_dof * dy[o * I + i0 + i]);
    }
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + (o * R + r) * I + i0;
      T* d = dx + (o * R + r) * I + i0;
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) d[i] = g[i] * (xr[i] - m[i]);
    }
  });
}

template <class T>
void max_forward(T* y, int64_t* idx, const T* x, int64_t O, int64_t R, int64_t I) {
  // v replaces the best so far if larger, or if it is the first NaN.
  auto better = [](T v, T best) { return v > best || (v != v && best == best); };
  for_tasks(O, R, I, [&](int64_t o, int64_t i0, int64_t i1) {
    T* yo = y + o * I;
    int64_t* io = idx + o * I;
    for (int64_t i = i0; i < i1; ++i) {
      yo[i] = x[o * R * I + i];
      io[i] = 0;
    }
    for (int64_t r = 1; r < R; ++r) {
      const T* xr = x + (o * R + r) * I;
      for (int64_t i = i0; i < i1; ++i)
        if (better(xr[i], yo[i])) {
          yo[i] = xr[i];
          io[i] = r;
        }
    }
  });
}

template <class T>
void max_backward(T* dx, const T* dy, const int64_t* idx, int64_t O, int64_t R, int64_t I) {
  for_tasks(O, R, I, [&](int64_t o, int64_t i0, int64_t i1) {
    for (int64_t r = 0; r < R; ++r)
      std::fill(dx + (o * R + r) * I + i0, dx + (o * R + r) * I + i1, T(0));
    for (int64_t i = i0; i < i1; ++i) dx[(o * R + idx[o * I + i]) * I + i] = dy[o * I + i];
  });
}

#define FOCUS_REDUCE_INSTANTIATE(T)                                                          \
  template void sum_forward<T>(T*, const T*, int64_t, int64_t, int64_t, double);             \
  template void sum_backward<T>(T*, const T*, int64_t, int64_t, int64_t, double);            \
  template void var_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t);            \
  template void var_backward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t); \
  template void max_forward<T>(T*, int64_t*, const T*, int64_t, int64_t, int64_t);           \
  template void max_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);
FOCUS_REDUCE_INSTANTIATE(float)
FOCUS_REDUCE_INSTANTIATE(double)
#undef FOCUS_REDUCE_INSTANTIATE

}  // namespace focus
