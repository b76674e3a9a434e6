// Row dot products (see gemv.hpp). Every F32 kernel takes four rows of B at a time (the portable
// one against one row of A, the AVX2 one against up to two, the AVX-512 one against up to four):
// independent accumulators, and each loaded vector used several times. Rows of B are read once
// per call whatever M is.
#include "focus/kernels/gemv.hpp"

#include <immintrin.h>

#include <algorithm>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/parallel.hpp"

namespace focus {

namespace {

// Multiply-adds above which the rows of B are split over the threads.
constexpr int64_t kParallelWork = int64_t(1) << 17;

template <class T>
inline void store(T* c, T acc, T alpha, T beta) {
  *c = alpha * acc + (beta == T(0) ? T(0) : beta * *c);
}

// Rows [j0, j1) of B: portable.
template <class T>
void dots_portable(int64_t M, int64_t j0, int64_t j1, int64_t K, T alpha, const T* A, int64_t lda,
                   const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) {
    const T *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
    for (int64_t i = 0; i < M; ++i) {
      const T* a = A + i * lda;
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t k = 0; k < K; ++k) {
        s0 += a[k] * b0[k];
        s1 += a[k] * b1[k];
        s2 += a[k] * b2[k];
        s3 += a[k] * b3[k];
      }
      T* c = C + i * ldc + j;
      store(c, s0, alpha, beta);
      store(c + 1, s1, alpha, beta);
      store(c + 2, s2, alpha, beta);
      store(c + 3, s3, alpha, beta);
    }
  }
  for (; j < j1; ++j)
    for (int64_t i = 0; i < M; ++i) {
      const T *a = A + i * lda, *b = B + j * ldb;
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < K; ++k) s += a[k] * b[k];
      store(C + i * ldc + j, s, alpha, beta);
    }
}

// GCC 12 flags the intrinsics' internal _mm512_undefined_* placeholders (in reduce4's extract).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// AVX-512, 16 floats a vector, the K tail masked. Named accumulators rather than arrays: GCC
// keeps arrays of vectors in memory here (a store per accumulator per step).
using V = __m512;
#define FOCUS_AVX512 __attribute__((target("avx512f,fma")))

FOCUS_AVX512 inline V load(const float* p, int64_t k, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, p + k);
}
// The four sums of s0 .. s3 as one (4) vector, by a transposing add tree (13 operations where
// four separate horizontal sums take about 40).
FOCUS_AVX512 inline __m128 reduce4(V s0, V s1, V s2, V s3) {
  // Per 128-bit lane: a = (s0 02, s1 02, s0 13, s1 13), b likewise for s2, s3 (02: elements 0+2).
  const V a = _mm512_add_ps(_mm512_unpacklo_ps(s0, s1), _mm512_unpackhi_ps(s0, s1));
  const V b = _mm512_add_ps(_mm512_unpacklo_ps(s2, s3), _mm512_unpackhi_ps(s2, s3));
  const __m512d ad = _mm512_castps_pd(a), bd = _mm512_castps_pd(b);
  // Per 128-bit lane: (s0, s1, s2, s3) partial sums; then the four lanes added.
  const V c = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(ad, bd)),
                            _mm512_castpd_ps(_mm512_unpackhi_pd(ad, bd)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(c),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
FOCUS_AVX512 inline void store4(float* c, V s0, V s1, V s2, V s3, float alpha, float beta) {
  __m128 r = _mm_mul_ps(_mm_set1_ps(alpha), reduce4(s0, s1, s2, s3));
  if (beta != 0.0f) r = _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(c), r);
  _mm_storeu_ps(c, r);
}

// Row i of A against rows j .. j+3 of B.
FOCUS_AVX512 void block_1x4(int64_t i, int64_t j, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                            int64_t ldc) {
  const int64_t K16 = K / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (K - K16)) - 1u);
  const float* a = A + i * lda;
  const float *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
  V s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = k < K16 ? __mmask16(0xFFFF) : tail;
    const V x = load(a, k, m);
    s0 = _mm512_fmadd_ps(x, load(b0, k, m), s0);
    s1 = _mm512_fmadd_ps(x, load(b1, k, m), s1);
    s2 = _mm512_fmadd_ps(x, load(b2, k, m), s2);
    s3 = _mm512_fmadd_ps(x, load(b3, k, m), s3);
  }
  store4(C + i * ldc + j, s0, s1, s2, s3, alpha, beta);
}

// Rows i .. i+3 of A against rows j .. j+3 of B: 16 accumulators, 8 loads per 16 FMAs.
FOCUS_AVX512 void block_4x4(int64_t i, int64_t j, int64_t K, float alpha, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                            int64_t ldc) {
  const int64_t K16 = K / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (K - K16)) - 1u);
  const float *a0 = A + i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
  const float *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
  V s00 = _mm512_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00,
    s13 = s00, s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00,
    s33 = s00;
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 m = k < K16 ? __mmask16(0xFFFF) : tail;
    const V y0 = load(b0, k, m), y1 = load(b1, k, m), y2 = load(b2, k, m), y3 = load(b3, k, m);
    V x = load(a0, k, m);
    s00 = _mm512_fmadd_ps(x, y0, s00);
    s01 = _mm512_fmadd_ps(x, y1, s01);
    s02 = _mm512_fmadd_ps(x, y2, s02);
    s03 = _mm512_fmadd_ps(x, y3, s03);
    x = load(a1, k, m);
    s10 = _mm512_fmadd_ps(x, y0, s10);
    s11 = _mm512_fmadd_ps(x, y1, s11);
    s12 = _mm512_fmadd_ps(x, y2, s12);
    s13 = _mm512_fmadd_ps(x, y3, s13);
    x = load(a2, k, m);
    s20 = _mm512_fmadd_ps(x, y0, s20);
    s21 = _mm512_fmadd_ps(x, y1, s21);
    s22 = _mm512_fmadd_ps(x, y2, s22);
    s23 = _mm512_fmadd_ps(x, y3, s23);
    x = load(a3, k, m);
    s30 = _mm512_fmadd_ps(x, y0, s30);
    s31 = _mm512_fmadd_ps(x, y1, s31);
    s32 = _mm512_fmadd_ps(x, y2, s32);
    s33 = _mm512_fmadd_ps(x, y3, s33);
  }
  float* c = C + i * ldc + j;
  store4(c, s00, s01, s02, s03, alpha, beta);
  store4(c + ldc, s10, s11, s12, s13, alpha, beta);
  store4(c + 2 * ldc, s20, s21, s22, s23, alpha, beta);
  store4(c + 3 * ldc, s30, s31, s32, s33, alpha, beta);
}

// Rows [j0, j1) of B: AVX-512, blocks of 4 rows of B by 4 (then 1) rows of A.
FOCUS_AVX512 void dots_avx512(int64_t M, int64_t j0, int64_t j1, int64_t K, float alpha,
                              const float* A, int64_t lda, const float* B, int64_t ldb,
                              float beta, float* C, int64_t ldc) {
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) {
    int64_t i = 0;
    for (; i + 4 <= M; i += 4) block_4x4(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (; i < M; ++i) block_1x4(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  if (j < j1) dots_portable<float>(M, j, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#undef FOCUS_AVX512
#pragma GCC diagnostic pop

// AVX2, 8 floats a vector, the K tail by masked loads. Two rows of A by four of B (8
// accumulators, 6 loads per 8 FMAs: 16 ymm registers hold no more), and one row of A by four of
// B unrolled twice over k (8 accumulators: two FMA pipes of latency 4 need 8 sums in flight).
#define FOCUS_AVX2 __attribute__((target("avx2,fma")))

FOCUS_AVX2 inline __m256i tail_mask(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(left, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// The four sums of s0 .. s3 as one (4) vector.
FOCUS_AVX2 inline __m128 reduce4_avx2(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
  const __m256 c = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
  return _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
}
FOCUS_AVX2 inline void store4_avx2(float* c, __m256 s0, __m256 s1, __m256 s2, __m256 s3, float alpha,
                                   float beta) {
  __m128 r = _mm_mul_ps(_mm_set1_ps(alpha), reduce4_avx2(s0, s1, s2, s3));
  if (beta != 0.0f) r = _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(c), r);
  _mm_storeu_ps(c, r);
}

// Row i of A against rows j .. j+3 of B.
FOCUS_AVX2 void block_1x4_avx2(int64_t i, int64_t j, int64_t K, float alpha, const float* A,
                               int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                               int64_t ldc) {
  const float* a = A + i * lda;
  const float *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    const __m256 x = _mm256_loadu_ps(a + k), y = _mm256_loadu_ps(a + k + 8);
    s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b0 + k), s0);
    s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b1 + k), s1);
    s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b2 + k), s2);
    s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b3 + k), s3);
    t0 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b0 + k + 8), t0);
    t1 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b1 + k + 8), t1);
    t2 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b2 + k + 8), t2);
    t3 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b3 + k + 8), t3);
  }
  for (; k < K; k += 8) {
    const __m256i m = tail_mask(K - k);
    const __m256 x = _mm256_maskload_ps(a + k, m);
    s0 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b0 + k, m), s0);
    s1 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b1 + k, m), s1);
    s2 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b2 + k, m), s2);
    s3 = _mm256_fmadd_ps(x, _mm256_maskload_ps(b3 + k, m), s3);
  }
  store4_avx2(C + i * ldc + j, _mm256_add_ps(s0, t0), _mm256_add_ps(s1, t1), _mm256_add_ps(s2, t2),
              _mm256_add_ps(s3, t3), alpha, beta);
}

template <bool Masked>
FOCUS_AVX2 inline __m256 load8(const float* p, __m256i m) {
  if constexpr (Masked) return _mm256_maskload_ps(p, m);
  else return _mm256_loadu_ps(p);
}

// One k-step of 8 (the tail masked) of rows a0, a1 of A against rows b0 .. b3 of B.
template <bool Masked>
FOCUS_AVX2 inline void step_2x4(int64_t k, __m256i m, const float* a0, const float* a1,
                                const float* b0, const float* b1, const float* b2, const float* b3,
                                __m256& s00, __m256& s01, __m256& s02, __m256& s03, __m256& s10,
                                __m256& s11, __m256& s12, __m256& s13) {
  const __m256 y0 = load8<Masked>(b0 + k, m), y1 = load8<Masked>(b1 + k, m);
  const __m256 y2 = load8<Masked>(b2 + k, m), y3 = load8<Masked>(b3 + k, m);
  __m256 x = load8<Masked>(a0 + k, m);
  s00 = _mm256_fmadd_ps(x, y0, s00);
  s01 = _mm256_fmadd_ps(x, y1, s01);
  s02 = _mm256_fmadd_ps(x, y2, s02);
  s03 = _mm256_fmadd_ps(x, y3, s03);
  x = load8<Masked>(a1 + k, m);
  s10 = _mm256_fmadd_ps(x, y0, s10);
  s11 = _mm256_fmadd_ps(x, y1, s11);
  s12 = _mm256_fmadd_ps(x, y2, s12);
  s13 = _mm256_fmadd_ps(x, y3, s13);
}

// Rows i, i+1 of A against rows j .. j+3 of B.
FOCUS_AVX2 void block_2x4_avx2(int64_t i, int64_t j, int64_t K, float alpha, const float* A,
                               int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                               int64_t ldc) {
  const float *a0 = A + i * lda, *a1 = a0 + lda;
  const float *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
  __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00,
         s12 = s00, s13 = s00;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8)
    step_2x4<false>(k, __m256i{}, a0, a1, b0, b1, b2, b3, s00, s01, s02, s03, s10, s11, s12, s13);
  if (k < K)
    step_2x4<true>(k, tail_mask(K - k), a0, a1, b0, b1, b2, b3, s00, s01, s02, s03, s10, s11, s12,
                   s13);
  float* c = C + i * ldc + j;
  store4_avx2(c, s00, s01, s02, s03, alpha, beta);
  store4_avx2(c + ldc, s10, s11, s12, s13, alpha, beta);
}

// Rows [j0, j1) of B: AVX2, blocks of 4 rows of B by 2 (then 1) rows of A.
FOCUS_AVX2 void dots_avx2(int64_t M, int64_t j0, int64_t j1, int64_t K, float alpha,
                          const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                          float* C, int64_t ldc) {
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) {
    int64_t i = 0;
    for (; i + 2 <= M; i += 2) block_2x4_avx2(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (; i < M; ++i) block_1x4_avx2(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  if (j < j1) dots_portable<float>(M, j, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#undef FOCUS_AVX2

// Splits the rows of B over the threads (in multiples of 4) when the product is large.
template <class Kernel>
void run(int64_t M, int64_t N, int64_t K, Kernel kernel) {
  split_over_threads(N, 4, M * N * K >= kParallelWork, kernel);
}

}  // namespace

template <class T>
void gemm_row_dots_portable(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                            const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  run(M, N, K, [&](int64_t j0, int64_t j1) {
    dots_portable<T>(M, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  });
}

template <>
void gemm_row_dots<float>(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                          int64_t ldc) {
  const Isa isa = active_isa();
  if (isa == Isa::Scalar)
    return gemm_row_dots_portable<float>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const auto dots = isa == Isa::Avx512 ? &dots_avx512 : &dots_avx2;
  run(M, N, K, [&](int64_t j0, int64_t j1) {
    dots(M, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  });
}

template <>
void gemm_row_dots<double>(int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                           int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                           int64_t ldc) {
  gemm_row_dots_portable<double>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm_row_dots_portable<float>(int64_t, int64_t, int64_t, float, const float*, int64_t,
                                            const float*, int64_t, float, float*, int64_t);
template void gemm_row_dots_portable<double>(int64_t, int64_t, int64_t, double, const double*,
                                             int64_t, const double*, int64_t, double, double*,
                                             int64_t);

}  // namespace focus
