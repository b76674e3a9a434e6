// Few-row products on packed weight panels (see panel_gemm.hpp). Letters: M rows of A and C,
// N rows of W (columns of C), K the shared dimension; R <= 6 rows of A per micro-kernel call.
#include "focus/kernels/panel_gemm.hpp"

#include <immintrin.h>

#include <algorithm>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/parallel.hpp"

namespace focus {

namespace {

// Multiply-adds above which the panels are split over the threads.
constexpr int64_t kParallelWork = int64_t(1) << 17;
constexpr int64_t P16 = kPanelRows;

inline float widen(float w) { return w; }
inline float widen(BFloat16 w) { return bf16_bits_to_float(w.bits); }

inline void store(float* c, float acc, float alpha, float beta) {
  *c = alpha * acc + (beta == 0.0f ? 0.0f : beta * *c);
}

#define FOCUS_AVX2 __attribute__((target("avx2,fma")))

// The 16 weights of one k of a panel, as two vectors.
FOCUS_AVX2 inline void load16(const float* p, __m256& lo, __m256& hi) {
  lo = _mm256_loadu_ps(p);
  hi = _mm256_loadu_ps(p + 8);
}
FOCUS_AVX2 inline void load16(const BFloat16* p, __m256& lo, __m256& hi) {
  const auto* q = reinterpret_cast<const __m128i*>(p);
  lo = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q)), 16));
  hi = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q + 1)), 16));
}

// C (R, cols) = alpha * A (R, K) @ panel^T + beta * C, cols <= 16. With R <= 2 the even and odd
// k go to separate accumulators, so that enough FMA chains are in flight.
template <class W, int R>
FOCUS_AVX2 void block(const float* A, int64_t lda, const W* panel, int64_t K, float alpha,
                      float beta, float* C, int64_t ldc, int64_t cols) {
  __m256 c0[R], c1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  int64_t k = 0;
  if constexpr (R <= 2) {
    __m256 d0[R], d1[R];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) d0[r] = d1[r] = _mm256_setzero_ps();
    for (; k + 2 <= K; k += 2) {
      __m256 w0, w1, v0, v1;
      load16(panel + k * P16, w0, w1);
      load16(panel + (k + 1) * P16, v0, v1);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
        const __m256 b = _mm256_broadcast_ss(A + r * lda + k + 1);
        c0[r] = _mm256_fmadd_ps(a, w0, c0[r]);
        c1[r] = _mm256_fmadd_ps(a, w1, c1[r]);
        d0[r] = _mm256_fmadd_ps(b, v0, d0[r]);
        d1[r] = _mm256_fmadd_ps(b, v1, d1[r]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      c0[r] = _mm256_add_ps(c0[r], d0[r]);
      c1[r] = _mm256_add_ps(c1[r], d1[r]);
    }
  }
  for (; k < K; ++k) {
    __m256 w0, w1;
    load16(panel + k * P16, w0, w1);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
      c0[r] = _mm256_fmadd_ps(a, w0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, w1, c1[r]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    float* c = C + r * ldc;
    __m256 lo = _mm256_mul_ps(va, c0[r]), hi = _mm256_mul_ps(va, c1[r]);
    if (cols == P16) {
      if (beta != 0.0f) {
        lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
        hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
      }
      _mm256_storeu_ps(c, lo);
      _mm256_storeu_ps(c + 8, hi);
    } else {
      alignas(32) float t[P16];
      _mm256_store_ps(t, lo);
      _mm256_store_ps(t + 8, hi);
      for (int64_t j = 0; j < cols; ++j) c[j] = t[j] + (beta == 0.0f ? 0.0f : beta * c[j]);
    }
  }
}

// Panels [p0, p1): all rows of A against each panel in turn (the panel stays in cache).
template <class W>
FOCUS_AVX2 void panels_avx2(int64_t M, int64_t p0, int64_t p1, int64_t N, int64_t K, float alpha,
                            const float* A, int64_t lda, const W* P, float beta, float* C,
                            int64_t ldc) {
  for (int64_t p = p0; p < p1; ++p) {
    const W* panel = P + p * K * P16;
    const int64_t cols = std::min(P16, N - p * P16);
    float* Cp = C + p * P16;
    int64_t i = 0;
    for (; i + 6 <= M; i += 6) block<W, 6>(A + i * lda, lda, panel, K, alpha, beta, Cp + i * ldc, ldc, cols);
    const float* Ai = A + i * lda;
    float* Ci = Cp + i * ldc;
    switch (M - i) {
      case 5: block<W, 5>(Ai, lda, panel, K, alpha, beta, Ci, ldc, cols); break;
      case 4: block<W, 4>(Ai, lda, panel, K, alpha, beta, Ci, ldc, cols); break;
      case 3: block<W, 3>(Ai, lda, panel, K, alpha, beta, Ci, ldc, cols); break;
      case 2: block<W, 2>(Ai, lda, panel, K, alpha, beta, Ci, ldc, cols); break;
      case 1: block<W, 1>(Ai, lda, panel, K, alpha, beta, Ci, ldc, cols); break;
      default: break;
    }
  }
}

#undef FOCUS_AVX2

// Panels [p0, p1): plain loops, one element of C at a time.
template <class W>
void panels_portable(int64_t M, int64_t p0, int64_t p1, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const W* P, float beta, float* C, int64_t ldc) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t r = 0; r < P16 && p * P16 + r < N; ++r)
      for (int64_t i = 0; i < M; ++i) {
        const float* a = A + i * lda;
        const W* w = P + p * K * P16 + r;
        float s = 0;
        for (int64_t k = 0; k < K; ++k) s += a[k] * widen(w[k * P16]);
        store(C + i * ldc + p * P16 + r, s, alpha, beta);
      }
}

// Splits the panels over the threads when the product is large.
template <class Kernel>
void run(int64_t M, int64_t N, int64_t K, Kernel kernel) {
  split_over_threads(panel_count(N), 1, M * N * K >= kParallelWork, kernel);
}

}  // namespace

template <class W>
void pack_panels(int64_t N, int64_t K, const float* Wsrc, int64_t ldw, W* P) {
  const int64_t panels = panel_count(N);
#pragma omp parallel for schedule(static) if (N * K > (int64_t(1) << 18))
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < P16; ++r) {
        const int64_t n = p * P16 + r;
        P[(p * K + k) * P16 + r] = n < N ? W(Wsrc[n * ldw + k]) : W(0.0f);
      }
}

template <class W>
void gemm_panels(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const W* P, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (active_isa() == Isa::Scalar) return gemm_panels_reference(M, N, K, alpha, A, lda, P, beta, C, ldc);
  run(M, N, K, [&](int64_t p0, int64_t p1) {
    panels_avx2<W>(M, p0, p1, N, K, alpha, A, lda, P, beta, C, ldc);
  });
}

template <class W>
void gemm_panels_reference(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                           int64_t lda, const W* P, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  run(M, N, K, [&](int64_t p0, int64_t p1) {
    panels_portable<W>(M, p0, p1, N, K, alpha, A, lda, P, beta, C, ldc);
  });
}

#define FOCUS_PANELS_INSTANTIATE(W)                                                             \
  template void pack_panels<W>(int64_t, int64_t, const float*, int64_t, W*);                     \
  template void gemm_panels<W>(int64_t, int64_t, int64_t, float, const float*, int64_t, const W*, \
                               float, float*, int64_t);                                          \
  template void gemm_panels_reference<W>(int64_t, int64_t, int64_t, float, const float*,         \
                                         int64_t, const W*, float, float*, int64_t);
FOCUS_PANELS_INSTANTIATE(float)
FOCUS_PANELS_INSTANTIATE(BFloat16)
#undef FOCUS_PANELS_INSTANTIATE

}  // namespace focus
