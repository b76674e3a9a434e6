// Blocked AVX-512 F32 GEMM for the convolution kernels (see conv_gemm.hpp). Compiled for AVX-512
// with a target pragma in every build (portable ones included) and chosen at run time from
// active_isa(), so FOCUS_FORCE_ISA=avx2 on an AVX-512 machine runs what an AVX2 machine runs.
// Letters: MR x NR = 8 x 48 register tile, KC = reduction steps per packed block.
#include "focus/kernels/conv_gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <type_traits>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/precision.hpp"

#include <immintrin.h>

namespace focus {

namespace {

constexpr int64_t MR = 8, NR = 48, KC = 128;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float, FreeDeleter>;
Buffer aligned_floats(int64_t n) {
  const size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + 63) / 64) * 64;
  return Buffer(static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64)));
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
// GCC 12 flags the intrinsics' internal _mm512_undefined_* placeholders as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Panels of op(A) rows [0, M), reduction steps [k0, k0 + kc): panel p holds, for each k, the MR
// values op(A)[p*MR + r, k0 + k] (zeros past M).
void pack_a(float* ap, bool ta, const float* A, int64_t lda, int64_t M, int64_t k0, int64_t kc) {
  for (int64_t i0 = 0; i0 < M; i0 += MR) {
    float* dst = ap + i0 * kc;
    const int64_t rows = std::min(MR, M - i0);
    if (ta) {  // op(A)[i, k] = A[k, i]: MR contiguous values per k
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (k0 + k) * lda + i0;
        for (int64_t r = 0; r < MR; ++r) dst[k * MR + r] = r < rows ? src[r] : 0.0f;
      }
    } else {  // op(A)[i, k] = A[i, k]: rows contiguous in k
      for (int64_t r = 0; r < MR; ++r) {
        if (r >= rows) {
          for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.0f;
          continue;
        }
        const float* src = A + (i0 + r) * lda + k0;
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
      }
    }
  }
}

// Panels of B's columns [0, N), steps [k0, k0 + kc): panel p holds, for each k, the NR values
// B[k0 + k, p*NR + j] (zeros past N).
void pack_b(float* bp, const float* B, int64_t ldb, int64_t N, int64_t k0, int64_t kc) {
  for (int64_t j0 = 0; j0 < N; j0 += NR) {
    float* dst = bp + j0 * kc;
    const int64_t cols = std::min(NR, N - j0);
    const __mmask16 m0 = cols >= 16 ? 0xFFFF : __mmask16((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : __mmask16((1u << (cols - 16)) - 1);
    const __mmask16 m2 = cols >= 48 ? 0xFFFF : cols <= 32 ? 0 : __mmask16((1u << (cols - 32)) - 1);
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (k0 + k) * ldb + j0;
      _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
      _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
      _mm512_store_ps(dst + k * NR + 32, _mm512_maskz_loadu_ps(m2, src + 32));
    }
  }
}

// C[0:rows, 0:cols] = a-panel @ b-panel (+ beta * C); a: kc x MR, b: kc x NR.
void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t rows,
                  int64_t cols, float beta) {
  __m512 acc[MR][3];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(ar, b2, acc[r][2]);
    }
    a += MR;
    b += NR;
  }
  const __mmask16 m[3] = {
      cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1),
      cols >= 32 ? __mmask16(0xFFFF) : cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1),
      cols >= 48 ? __mmask16(0xFFFF) : cols <= 32 ? __mmask16(0) : __mmask16((1u << (cols - 32)) - 1)};
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) break;
    float* cr = c + r * ldc;
#pragma GCC unroll 3
    for (int v = 0; v < 3; ++v) {
      __m512 out = acc[r][v];
      if (beta != 0.0f) out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m[v], cr + 16 * v), out);
      _mm512_mask_storeu_ps(cr + 16 * v, m[v], out);
    }
  }
}

// One thread: per block of KC steps, pack B and op(A), then sweep the 48-column panels, each
// against every 8-row panel of op(A) (the B panel stays in L1, the A panels stream from L2).
void sgemm_blocked(bool ta, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t Mp = (M + MR - 1) / MR * MR, Np = (N + NR - 1) / NR * NR;
  const int64_t kcmax = std::min(KC, K);
  Buffer ap = aligned_floats(Mp * kcmax), bp = aligned_floats(Np * kcmax);
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    pack_a(ap.get(), ta, A, lda, M, k0, kc);
    pack_b(bp.get(), B, ldb, N, k0, kc);
    const float bk = k0 == 0 ? beta : 1.0f;
    for (int64_t j0 = 0; j0 < N; j0 += NR)
      for (int64_t i0 = 0; i0 < M; i0 += MR)
        micro_kernel(kc, ap.get() + i0 * kc, bp.get() + j0 * kc, C + i0 * ldc + j0, ldc,
                     std::min(MR, M - i0), std::min(NR, N - j0), bk);
  }
}
#pragma GCC diagnostic pop
#pragma GCC pop_options

}  // namespace

ConvGemmPath conv_gemm_path(bool transb, int64_t M, int64_t N, int64_t K) {
  // Outside a parallel region with threads to spare, OpenBLAS's threading splits the product.
  const bool serial = omp_in_parallel() || num_threads() == 1;
  return !transb && serial && active_isa() == Isa::Avx512 && gemm_kernel() == GemmKernel::Auto &&
                 compute_precision() == Precision::F32 && M > 0 && N > 0 && K > 0
             ? ConvGemmPath::Blocked
             : ConvGemmPath::Gemm;
}

template <class T>
void conv_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (conv_gemm_path(tb, M, N, K) == ConvGemmPath::Blocked)
      return sgemm_blocked(ta, M, N, K, A, lda, B, ldb, beta, C, ldc);
  }
  gemm(ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
}

template void conv_gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t,
                               const float*, int64_t, float, float*, int64_t);
template void conv_gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t,
                                const double*, int64_t, double, double*, int64_t);

}  // namespace focus
