// The int8 GEMM's AVX512-VNNI path (see qgemm.hpp): vpdpbusd multiplies 4 u8 activations by 4
// s8 weights and adds the 4 products to an int32 lane. Activations are shifted to u8 (+128) a
// block of rows at a time; the shift is removed with 128 * colsum(w). Register tile: 6 rows x 4
// vectors of 16 output channels (24 accumulators, 4 weight vectors, 1 broadcast). Loop order per
// block of rows: 64-channel slices of the weight panels (Kp x 64 bytes, L1-sized for the K here)
// outer, rows inner, so a slice is read from memory once per block.
// Called only when the CPU has AVX512-VNNI (qgemm_path / tests check qpath_supported).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "focus/kernels/qgemm.hpp"
#include "focus/tensor/error.hpp"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")
// GCC 12 flags the intrinsics' internal _mm512_undefined_* placeholders as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace focus {

namespace {

constexpr int kMr = 6;   // rows per tile
constexpr int kNb = 4;   // 16-channel vectors per tile
constexpr int64_t kBlock = 96;  // rows shifted to u8 at a time

// acc += dot4(a_u8, b_s8) per lane, in place. Inline asm ties the accumulator to its register:
// with the intrinsic, GCC 12 copied every accumulator to a fresh register (and spilled it) on
// each step, which ran the tile at a fifth of the instruction's throughput.
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// acc (MR, 16*NB) for rows A (u8, stride lda) and channels n0.. of the panels.
template <int MR, int NB>
void tile(int32_t* C, int64_t ldc, const uint8_t* A, int64_t lda, const int8_t* P,
          int64_t block_stride, int64_t Kq, const int32_t* corr, int64_t ncols) {
  __m512i acc[MR][NB];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_si512();
  for (int64_t q = 0; q < Kq; ++q) {
    __m512i b[NB];
    #pragma GCC unroll 8
    for (int j = 0; j < NB; ++j)
      b[j] = _mm512_load_si512(reinterpret_cast<const void*>(P + j * block_stride + q * 64));
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t a4;
      std::memcpy(&a4, A + i * lda + q * 4, 4);
      const __m512i a = _mm512_set1_epi32(a4);
      #pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) acc[i][j] = dpbusd(acc[i][j], a, b[j]);
    }
  }
  #pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    const int64_t valid = std::min<int64_t>(16, ncols - 16 * j);
    const __mmask16 mask = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
    const __m512i c = _mm512_maskz_loadu_epi32(mask, corr + 16 * j);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
      _mm512_mask_storeu_epi32(C + i * ldc + 16 * j, mask, _mm512_sub_epi32(acc[i][j], c));
  }
}

using TileFn = void (*)(int32_t*, int64_t, const uint8_t*, int64_t, const int8_t*, int64_t,
                        int64_t, const int32_t*, int64_t);

template <int MR>
TileFn pick_nb(int nb) {
  switch (nb) {
    case 1: return tile<MR, 1>;
    case 2: return tile<MR, 2>;
    case 3: return tile<MR, 3>;
    default: return tile<MR, 4>;
  }
}

TileFn pick(int mr, int nb) {
  switch (mr) {
    case 1: return pick_nb<1>(nb);
    case 2: return pick_nb<2>(nb);
    case 3: return pick_nb<3>(nb);
    case 4: return pick_nb<4>(nb);
    case 5: return pick_nb<5>(nb);
    default: return pick_nb<6>(nb);
  }
}

}  // namespace

void quantize_rows_avx512(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx,
                          int64_t M, int64_t K) {
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127),
                absmask = _mm512_set1_epi32(0x7FFFFFFF);
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * ldx;
    __m512 vmax = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mask = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
      const __m512i bits = _mm512_maskz_loadu_epi32(mask, row + k);
      vmax = _mm512_max_ps(vmax, _mm512_castsi512_ps(_mm512_and_si512(bits, absmask)));
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, vmax);
    float amax = 0;
    for (float v : lanes) amax = std::max(amax, v);
    scale[m] = amax / 127.0f;
    const __m512 inv = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    int8_t* out = q + m * ldq;
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mask = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
      // Round to nearest even (the default MXCSR mode), as the scalar nearbyint.
      const __m512 xv = _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(mask, row + k));
      __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(xv, inv));
      v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
      _mm512_mask_cvtepi32_storeu_epi8(out + k, mask, v);
    }
  }
}

void qgemm_s32_vnni512(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
                       const QWeight& w) {
  FOCUS_CHECK(w.path == QPath::Vnni512 && w.panels, ValueError,
              "qgemm_s32_vnni512: weight packed for {}", qpath_name(w.path));
  const int64_t Kp = w.Kp, Kq = Kp / 4, block_stride = Kq * 64;
  // 128 * colsum, padded to whole vectors.
  std::vector<int32_t> corr(static_cast<size_t>(w.Np), 0);
  for (int64_t n = 0; n < w.N; ++n) corr[size_t(n)] = 128 * w.colsum[size_t(n)];
  std::vector<uint8_t> A(static_cast<size_t>(std::min(kBlock, M) * Kp));
  for (int64_t m0 = 0; m0 < M; m0 += kBlock) {
    const int64_t mb = std::min(kBlock, M - m0);
    for (int64_t i = 0; i < mb; ++i) {
      const int8_t* src = qa + (m0 + i) * lda;
      uint8_t* dst = A.data() + i * Kp;
      for (int64_t k = 0; k < w.K; ++k) dst[k] = uint8_t(int(src[k]) + 128);
      for (int64_t k = w.K; k < Kp; ++k) dst[k] = 128;  // times a zero weight
    }
    for (int64_t n0 = 0; n0 < w.N; n0 += 16 * kNb) {
      const int64_t ncols = std::min<int64_t>(16 * kNb, w.N - n0);
      const int nb = int((ncols + 15) / 16);
      const int8_t* P = w.panels.get() + (n0 / 16) * block_stride;
      for (int64_t i = 0; i < mb; i += kMr) {
        const int mr = int(std::min<int64_t>(kMr, mb - i));
        pick(mr, nb)(acc + (m0 + i) * ldc + n0, ldc, A.data() + i * Kp, Kp, P, block_stride, Kq,
                     corr.data() + n0, ncols);
      }
    }
  }
}

}  // namespace focus

#pragma GCC diagnostic pop
#pragma GCC pop_options
