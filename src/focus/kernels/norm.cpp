// layer_norm and batch_norm kernels (see norm.hpp). layer_norm: parallel over rows, two passes
// per row for the statistics (mean, then squared deviations) in T over vector lanes; the
// weight/bias gradients sum in T over blocks of kRowBlock rows, then across blocks into
// per-thread double buffers, added up at the end. batch_norm: parallel over channels; each
// channel is N contiguous blocks of S, each block summed in T over vector lanes (full-width
// vectors for F32), the blocks' sums added in double.
#include "focus/kernels/norm.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "focus/kernels/cpu.hpp"

namespace focus {

namespace {

constexpr int64_t kParallel = 1 << 14;  // elements of work below which everything is serial
constexpr int64_t kRowBlock = 32;       // layer_norm rows whose dw, db add up in T before double

// Ones then zeros (C each), standing in for a missing weight or bias.
template <class T>
std::vector<T> affine_defaults(const T* w, const T* b, int64_t C) {
  std::vector<T> d;
  if (!w || !b) {
    d.assign(2 * C, T(0));
    std::fill(d.begin(), d.begin() + C, T(1));
  }
  return d;
}

}  // namespace

template <class T>
void layer_norm_forward(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t R,
                        int64_t C, double eps) {
  const std::vector<T> d = affine_defaults(w, b, C);
  const T* pw = w ? w : d.data();
  const T* pb = b ? b : d.data() + C;
#pragma omp parallel for schedule(static) if (R * C > kParallel)
  for (int64_t r = 0; r < R; ++r) layer_norm_row(y + r * C, mean + r, rstd + r, x + r * C, pw, pb, C, eps);
}

template <class T>
void layer_norm_row(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t C,
                    double eps) {
  T s = 0, ss = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < C; ++c) s += x[c];
  const T m = s / static_cast<T>(C);
#pragma omp simd reduction(+ : ss)
  for (int64_t c = 0; c < C; ++c) ss += (x[c] - m) * (x[c] - m);
  const T rs = static_cast<T>(1.0 / std::sqrt(double(ss) / double(C) + eps));
  *mean = m;
  *rstd = rs;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - m) * rs * w[c] + b[c];
}

template <class T>
void layer_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                         const T* w, int64_t R, int64_t C) {
  const std::vector<T> d = affine_defaults(w, static_cast<const T*>(nullptr), C);
  const T* pw = w ? w : d.data();
  const bool wb = dw || db;
  const int nt = R * C > kParallel ? num_threads() : 1;
  const int64_t nblocks = (R + kRowBlock - 1) / kRowBlock;
  std::vector<double> part(wb ? size_t(nt) * 2 * C : 0, 0.0);  // per thread: dw (C), db (C)
#pragma omp parallel num_threads(nt)
  {
    double* pdw = wb ? part.data() + size_t(omp_get_thread_num()) * 2 * C : nullptr;
    double* pdb = wb ? pdw + C : nullptr;
    std::vector<T> blk(wb ? 2 * C : 0);  // dw (C), db (C) of the rows of one block
    T* bdw = blk.data();
    T* bdb = wb ? bdw + C : nullptr;
#pragma omp for schedule(static)
    for (int64_t k = 0; k < nblocks; ++k) {
      const int64_t r1 = std::min(R, (k + 1) * kRowBlock);
      std::fill(blk.begin(), blk.end(), T(0));
      for (int64_t r = k * kRowBlock; r < r1; ++r) {
        const T* xr = x + r * C;
        const T* g = dy + r * C;
        const T m = mean[r], rs = rstd[r];
        if (dx) {
          T sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
          for (int64_t c = 0; c < C; ++c) {
            const T gw = g[c] * pw[c];
            sg += gw;
            sgx += gw * (xr[c] - m) * rs;
          }
          const T a = sg / static_cast<T>(C), bx = sgx / static_cast<T>(C);
          T* dr = dx + r * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dr[c] = rs * (g[c] * pw[c] - a - (xr[c] - m) * rs * bx);
        }
        if (wb) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            bdw[c] += g[c] * (xr[c] - m) * rs;
            bdb[c] += g[c];
          }
        }
      }
      for (int64_t c = 0; c < C && wb; ++c) {
        pdw[c] += bdw[c];
        pdb[c] += bdb[c];
      }
    }
  }
  for (int64_t c = 0; c < C && wb; ++c) {
    double sw = 0, sb = 0;
    for (int t = 0; t < nt; ++t) {
      sw += part[size_t(t) * 2 * C + c];
      sb += part[size_t(t) * 2 * C + C + c];
    }
    if (dw) dw[c] = static_cast<T>(sw);
    if (db) db[c] = static_cast<T>(sb);
  }
}

template <class T>
void batch_norm_stats(T* mean, T* var, const T* x, int64_t N, int64_t C, int64_t S) {
  const double M = double(N * S);
#pragma omp parallel for schedule(static) if (N * C * S > kParallel)
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* xs = x + (n * C + c) * S;
      T bs = 0;
#pragma omp simd reduction(+ : bs)
      for (int64_t i = 0; i < S; ++i) bs += xs[i];
      s += double(bs);
    }
    const double m = s / M;
    const T mt = static_cast<T>(m);
    for (int64_t n = 0; n < N; ++n) {
      const T* xs = x + (n * C + c) * S;
      T bss = 0;
#pragma omp simd reduction(+ : bss)
      for (int64_t i = 0; i < S; ++i) bss += (xs[i] - mt) * (xs[i] - mt);
      ss += double(bss);
    }
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(ss / M);
  }
}

template <class T>
void batch_norm_forward(T* y, const T* x, const T* mean, const T* rstd, const T* w, const T* b,
                        int64_t N, int64_t C, int64_t S) {
#pragma omp parallel for schedule(static) if (N * C * S > kParallel)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const T scale = rstd[c] * (w ? w[c] : T(1));
    const T shift = (b ? b[c] : T(0)) - mean[c] * scale;
    const T* xs = x + nc * S;
    T* ys = y + nc * S;
#pragma omp simd
    for (int64_t i = 0; i < S; ++i) ys[i] = xs[i] * scale + shift;
  }
}

template <class T>
void batch_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                         const T* w, int64_t N, int64_t C, int64_t S, bool training) {
  const double M = double(N * S);
#pragma omp parallel for schedule(static) if (N * C * S > kParallel)
  for (int64_t c = 0; c < C; ++c) {
    const T m = mean[c], rs = rstd[c];
    double sg = 0, sgx = 0;  // sum dy, sum dy * xhat
    for (int64_t n = 0; n < N; ++n) {
      const T* xs = x + (n * C + c) * S;
      const T* g = dy + (n * C + c) * S;
      T bg = 0, bgx = 0;
#pragma omp simd reduction(+ : bg, bgx)
      for (int64_t i = 0; i < S; ++i) {
        bg += g[i];
        bgx += g[i] * (xs[i] - m);
      }
      sg += double(bg);
      sgx += double(bgx) * double(rs);
    }
    if (dw) dw[c] = static_cast<T>(sgx);
    if (db) db[c] = static_cast<T>(sg);
    if (!dx) continue;
    const T k = rs * (w ? w[c] : T(1));
    const T a = training ? static_cast<T>(sg / M) : T(0);
    const T bx = training ? static_cast<T>(sgx / M) : T(0);
    for (int64_t n = 0; n < N; ++n) {
      const T* xs = x + (n * C + c) * S;
      const T* g = dy + (n * C + c) * S;
      T* d = dx + (n * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) d[i] = k * (g[i] - a - (xs[i] - m) * rs * bx);
    }
  }
}

#define FOCUS_NORM_INSTANTIATE(T)                                                                 \
  template void layer_norm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, \
                                      double);                                                    \
  template void layer_norm_row<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, double);     \
  template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                       const T*, int64_t, int64_t);                               \
  template void batch_norm_stats<T>(T*, T*, const T*, int64_t, int64_t, int64_t);                 \
  template void batch_norm_forward<T>(T*, const T*, const T*, const T*, const T*, const T*,       \
                                      int64_t, int64_t, int64_t);                                 \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                       const T*, int64_t, int64_t, int64_t, bool);
FOCUS_NORM_INSTANTIATE(float)
FOCUS_NORM_INSTANTIATE(double)
#undef FOCUS_NORM_INSTANTIATE

}  // namespace focus
