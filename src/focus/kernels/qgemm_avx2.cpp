// The int8 GEMM's AVX2 path (see qgemm.hpp): activations and weights as int16, vpmaddwd
// multiplies 2 pairs and adds them into an int32 lane (exact: no int16 sums that could
// saturate, unlike vpmaddubsw). Activations are widened a block of rows at a time. Register tile:
// 4 rows x 3 vectors of 8 output channels (12 accumulators, 3 weight vectors, 1 broadcast).
// Loop order as the VNNI path: 24-channel weight slices outer, rows inner.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "focus/kernels/qgemm.hpp"
#include "focus/tensor/error.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace focus {

namespace {

constexpr int kMr = 4;
constexpr int kNb = 3;
constexpr int64_t kBlock = 96;

template <int MR, int NB>
void tile(int32_t* C, int64_t ldc, const int16_t* A, int64_t lda, const int16_t* P,
          int64_t block_stride, int64_t Kh, int64_t ncols) {
  __m256i acc[MR][NB];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_setzero_si256();
  for (int64_t p = 0; p < Kh; ++p) {
    __m256i b[NB];
    #pragma GCC unroll 8
    for (int j = 0; j < NB; ++j)
      b[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(P + j * block_stride + p * 16));
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t a2;
      std::memcpy(&a2, A + i * lda + p * 2, 4);
      const __m256i a = _mm256_set1_epi32(a2);
      #pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a, b[j]));
    }
  }
  #pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    const int64_t valid = std::min<int64_t>(8, ncols - 8 * j);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t* dst = C + i * ldc + 8 * j;
      if (valid == 8) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), acc[i][j]);
      } else {
        alignas(32) int32_t tmp[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc[i][j]);
        std::memcpy(dst, tmp, size_t(valid) * 4);
      }
    }
  }
}

using TileFn = void (*)(int32_t*, int64_t, const int16_t*, int64_t, const int16_t*, int64_t,
                        int64_t, int64_t);

template <int MR>
TileFn pick_nb(int nb) {
  switch (nb) {
    case 1: return tile<MR, 1>;
    case 2: return tile<MR, 2>;
    default: return tile<MR, 3>;
  }
}

TileFn pick(int mr, int nb) {
  switch (mr) {
    case 1: return pick_nb<1>(nb);
    case 2: return pick_nb<2>(nb);
    case 3: return pick_nb<3>(nb);
    default: return pick_nb<4>(nb);
  }
}

}  // namespace

void quantize_rows_avx2(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx,
                        int64_t M, int64_t K) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const int64_t K8 = K / 8 * 8;
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * ldx;
    __m256 vmax = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8)
      vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(row + k), absmask));
    // A tree of 3 max steps, not a chain of 8 dependent scalar ones (every lane is >= 0).
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    for (int64_t k = K8; k < K; ++k) amax = std::max(amax, std::fabs(row[k]));
    scale[m] = amax / 127.0f;
    const float invs = amax > 0 ? 127.0f / amax : 0.0f;
    const __m256 inv = _mm256_set1_ps(invs);
    int8_t* out = q + m * ldq;
    for (int64_t k = 0; k < K8; k += 8) {
      // Round to nearest even (the default MXCSR mode), as the scalar nearbyint; the packs
      // saturate at +-127 at most since |x * inv| <= 127 up to rounding.
      const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + k), inv));
      const __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      const __m128i s8 = _mm_max_epi8(_mm_packs_epi16(s16, s16), _mm_set1_epi8(-127));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + k), s8);
    }
    for (int64_t k = K8; k < K; ++k)
      out[k] = int8_t(int(std::min(127.0f, std::max(-127.0f, std::nearbyint(row[k] * invs)))));
  }
}

void qgemm_s32_avx2(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
                    const QWeight& w) {
  FOCUS_CHECK(w.path == QPath::Avx2 && w.panels, ValueError, "qgemm_s32_avx2: weight packed for {}",
              qpath_name(w.path));
  const int64_t Kp = w.Kp, Kh = Kp / 2, block_stride = Kh * 16;  // int16 elements per 8 channels
  const auto* panels = reinterpret_cast<const int16_t*>(w.panels.get());
  std::vector<int16_t> A(static_cast<size_t>(std::min(kBlock, M) * Kp));
  for (int64_t m0 = 0; m0 < M; m0 += kBlock) {
    const int64_t mb = std::min(kBlock, M - m0);
    for (int64_t i = 0; i < mb; ++i) {
      const int8_t* src = qa + (m0 + i) * lda;
      int16_t* dst = A.data() + i * Kp;
      for (int64_t k = 0; k < w.K; ++k) dst[k] = src[k];
      for (int64_t k = w.K; k < Kp; ++k) dst[k] = 0;
    }
    for (int64_t n0 = 0; n0 < w.N; n0 += 8 * kNb) {
      const int64_t ncols = std::min<int64_t>(8 * kNb, w.N - n0);
      const int nb = int((ncols + 7) / 8);
      const int16_t* P = panels + (n0 / 8) * block_stride;
      for (int64_t i = 0; i < mb; i += kMr) {
        const int mr = int(std::min<int64_t>(kMr, mb - i));
        pick(mr, nb)(acc + (m0 + i) * ldc + n0, ldc, A.data() + i * Kp, Kp, P, block_stride, Kh,
                     ncols);
      }
    }
  }
}

}  // namespace focus

#pragma GCC pop_options
