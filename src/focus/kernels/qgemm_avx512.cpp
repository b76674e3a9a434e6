// The int8 GEMM's AVX512-VNNI path (see qgemm.hpp): vpdpbusd multiplies 4 u8 activations by 4
// s8 weights and adds the 4 products to an int32 lane. Each broadcast quad of s8 activations is
// flipped to u8 (x ^ 0x80 = x + 128) as it is read, and the shift is removed with the weight's
// 128 * colsum (QWeight::shift) in the tile's store; no copy of the activations is made. Register
// tile: 6 rows x 4 vectors of 16 output channels (24 accumulators, 4 weight vectors, 1
// broadcast). Loop order: 64-channel slices of the weight panels (Kp x 64 bytes, L1-sized for the
// K here) outer, rows inner. The store writes the int32 sums (qgemm_s32_vnni512) or dequantises
// them straight to F32 with the bias, = or += (qgemm_f32_vnni512).
// Called only when the CPU has AVX512-VNNI (qgemm_path / tests check qpath_supported).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

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

// acc += dot4(a_u8, b_s8) per lane, in place. Inline asm ties the accumulator to its register:
// with the intrinsic, GCC 12 copied every accumulator to a fresh register (and spilled it) on
// each step, which ran the tile at a fifth of the instruction's throughput.
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// Four s8 activations k..k+3 of a row as u8 (x ^ 0x80 = x + 128), one 32-bit word. The last
// quad of a row whose K is not a multiple of 4 is read byte by byte, padded with 0 (128 after
// the flip), which meets the panels' zero padding.
inline int32_t quad(const int8_t* row, int64_t k, int64_t K) {
  uint32_t a4 = 0;
  if (k + 4 <= K) std::memcpy(&a4, row + k, 4);
  else std::memcpy(&a4, row + k, size_t(K - k));
  return int32_t(a4 ^ 0x80808080u);
}

// Where a tile's results go: int32 sums (C), or dequantised F32 (Y = sum * sx[row] * sw[col] +
// bias[col], or Y +=), the formula of qdequantize_rows.
struct TileOut {
  int32_t* C = nullptr;
  float* Y = nullptr;
  int64_t ld = 0;
  const int32_t* corr = nullptr;  // 128 * colsum of the tile's channels
  const float* sx = nullptr;      // the tile's rows' scales (Y)
  const float* sw = nullptr;      // the tile's channels' scales (Y)
  const float* bias = nullptr;    // the tile's channels' biases (Y) or null
  bool accumulate = false;
  int64_t ncols = 0;
};

// One step of the tile: the MR rows' quads a4 against quad q of the NB panel vectors.
template <int MR, int NB>
[[gnu::always_inline]] inline void step(__m512i (&acc)[MR][NB], const int8_t* P,
                                        int64_t block_stride, int64_t q, const int32_t (&a4)[MR]) {
  __m512i b[NB];
  #pragma GCC unroll 8
  for (int j = 0; j < NB; ++j)
    b[j] = _mm512_load_si512(reinterpret_cast<const void*>(P + j * block_stride + q * 64));
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const __m512i a = _mm512_set1_epi32(a4[i]);
    #pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[i][j] = dpbusd(acc[i][j], a, b[j]);
  }
}

// The tile (MR rows x 16*NB channels) of rows A (s8, stride lda, K values) against the panels.
template <int MR, int NB>
void tile(const TileOut& o, const int8_t* A, int64_t lda, int64_t K, const int8_t* P,
          int64_t block_stride, int64_t Kq) {
  __m512i acc[MR][NB];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_si512();
  const int64_t whole = K / 4;  // quads read as words; the rest (at most one) through quad()
  int32_t a4[MR];
  for (int64_t q = 0; q < whole; ++q) {
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      uint32_t v;
      std::memcpy(&v, A + i * lda + q * 4, 4);
      a4[i] = int32_t(v ^ 0x80808080u);
    }
    step<MR, NB>(acc, P, block_stride, q, a4);
  }
  for (int64_t q = whole; q < Kq; ++q) {
    for (int i = 0; i < MR; ++i) a4[i] = quad(A + i * lda, q * 4, K);
    step<MR, NB>(acc, P, block_stride, q, a4);
  }
  #pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    const int64_t valid = std::min<int64_t>(16, o.ncols - 16 * j);
    const __mmask16 mask = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
    const __m512i c = _mm512_maskz_loadu_epi32(mask, o.corr + 16 * j);
    if (!o.Y) {
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i)
        _mm512_mask_storeu_epi32(o.C + i * o.ld + 16 * j, mask, _mm512_sub_epi32(acc[i][j], c));
      continue;
    }
    const __m512 sw = _mm512_maskz_loadu_ps(mask, o.sw + 16 * j);
    const __m512 bias = o.bias ? _mm512_maskz_loadu_ps(mask, o.bias + 16 * j) : _mm512_setzero_ps();
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* y = o.Y + i * o.ld + 16 * j;
      const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], c));
      __m512 r = _mm512_fmadd_ps(v, _mm512_mul_ps(_mm512_set1_ps(o.sx[i]), sw), bias);
      if (o.accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, y));
      _mm512_mask_storeu_ps(y, mask, r);
    }
  }
}

using TileFn = void (*)(const TileOut&, const int8_t*, int64_t, int64_t, const int8_t*, int64_t,
                        int64_t);

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

// The product's loop: 64-channel slices of the panels outer (a slice, Kp x 64 bytes, stays in
// L1 across the rows), 6-row tiles inner. `out` holds the row-0 / channel-0 pointers.
void run(const TileOut& out, const int8_t* qa, int64_t lda, int64_t M, const QWeight& w) {
  FOCUS_CHECK(w.path == QPath::Vnni512 && w.panels && int64_t(w.shift.size()) == w.Np, ValueError,
              "qgemm (avx512-vnni): weight packed for {}", qpath_name(w.path));
  const int64_t Kq = w.Kp / 4, block_stride = Kq * 64;
  for (int64_t n0 = 0; n0 < w.N; n0 += 16 * kNb) {
    TileOut o = out;
    o.ncols = std::min<int64_t>(16 * kNb, w.N - n0);
    o.corr = w.shift.data() + n0;
    if (o.Y) o.sw = w.scale.data() + n0, o.bias = out.bias ? out.bias + n0 : nullptr;
    const int nb = int((o.ncols + 15) / 16);
    const int8_t* P = w.panels.get() + (n0 / 16) * block_stride;
    for (int64_t i = 0; i < M; i += kMr) {
      TileOut t = o;
      if (t.Y) t.Y = out.Y + i * out.ld + n0, t.sx = out.sx + i;
      else t.C = out.C + i * out.ld + n0;
      pick(int(std::min<int64_t>(kMr, M - i)), nb)(t, qa + i * lda, lda, w.K, P, block_stride, Kq);
    }
  }
}

// A row's scale (max |x| / 127, stored) and the factor that maps it onto [-127, 127].
inline __m512 row_scale(float amax, float* scale) {
  *scale = amax / 127.0f;
  return _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
}

// 16 values (mask: the valid lanes) times inv, rounded to nearest even (the default MXCSR mode,
// as the scalar nearbyint), clamped to [-127, 127], stored as int8.
inline void store_quantized(int8_t* out, __m512 v, __m512 inv, __mmask16 mask) {
  __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(v, inv));
  r = _mm512_min_epi32(_mm512_max_epi32(r, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
  _mm512_mask_cvtepi32_storeu_epi8(out, mask, r);
}

}  // namespace

void quantize_rows_avx512(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx,
                          int64_t M, int64_t K) {
  const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
  // Two passes over a block of rows, each row's work independent of the others' (the core
  // overlaps rows instead of waiting on one row's reduction and division): the rows' max |x|,
  // then their scales and integers.
  constexpr int64_t kRows = 64;
  float amax[kRows];
  for (int64_t m0 = 0; m0 < M; m0 += kRows) {
    const int64_t mb = std::min(kRows, M - m0);
    for (int64_t i = 0; i < mb; ++i) {
      const float* row = x + (m0 + i) * ldx;
      __m512 vmax = _mm512_setzero_ps();
      for (int64_t k = 0; k < K; k += 16) {
        const __mmask16 mask = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
        const __m512i bits = _mm512_maskz_loadu_epi32(mask, row + k);
        vmax = _mm512_max_ps(vmax, _mm512_castsi512_ps(_mm512_and_si512(bits, absmask)));
      }
      amax[i] = _mm512_reduce_max_ps(vmax);  // a tree of 4 steps (every lane is >= 0)
    }
    for (int64_t i = 0; i < mb; ++i) {
      const float* row = x + (m0 + i) * ldx;
      const __m512 inv = row_scale(amax[i], scale + m0 + i);
      int8_t* out = q + (m0 + i) * ldq;
      for (int64_t k = 0; k < K; k += 16) {
        const __mmask16 mask = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1);
        store_quantized(out + k, _mm512_maskz_loadu_ps(mask, row + k), inv, mask);
      }
    }
  }
}

namespace {

// The LayerNorm and quantisation of a block of rows in two passes, each row's work independent
// of the others' (the core overlaps rows): the rows' mean and sum of squared deviations, then
// y = (x - mean) rstd w + b and its integers. As layer_norm_row: mean and variance in float,
// rstd = 1 / sqrt(var + eps) in double; the quantiser as quantize_rows_avx512's.
template <int NV>
void layer_norm_quantize_rows(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx,
                              int64_t M, const float* w, const float* b, double eps) {
  constexpr int64_t K = 16 * NV, kRows = 64;
  float mean[kRows], rstd[kRows];
  const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
  for (int64_t m0 = 0; m0 < M; m0 += kRows) {
    const int64_t mb = std::min(kRows, M - m0);
    for (int64_t i = 0; i < mb; ++i) {
      const float* row = x + (m0 + i) * ldx;
      __m512 v[NV];
      __m512 acc = _mm512_setzero_ps();
      #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) acc = _mm512_add_ps(acc, v[j] = _mm512_loadu_ps(row + 16 * j));
      mean[i] = _mm512_reduce_add_ps(acc) / float(K);
      const __m512 mv = _mm512_set1_ps(mean[i]);
      acc = _mm512_setzero_ps();
      #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) {
        const __m512 d = _mm512_sub_ps(v[j], mv);
        acc = _mm512_fmadd_ps(d, d, acc);
      }
      rstd[i] = float(1.0 / std::sqrt(double(_mm512_reduce_add_ps(acc)) / double(K) + eps));
    }
    for (int64_t i = 0; i < mb; ++i) {
      const float* row = x + (m0 + i) * ldx;
      const __m512 mv = _mm512_set1_ps(mean[i]), rs = _mm512_set1_ps(rstd[i]);
      __m512 v[NV];
      __m512 vmax = _mm512_setzero_ps();
      #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) {
        v[j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(row + 16 * j), mv), rs),
                               _mm512_loadu_ps(w + 16 * j), _mm512_loadu_ps(b + 16 * j));
        vmax = _mm512_max_ps(vmax, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v[j]), absmask)));
      }
      const __m512 inv = row_scale(_mm512_reduce_max_ps(vmax), scale + m0 + i);
      int8_t* out = q + (m0 + i) * ldq;
      #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) store_quantized(out + 16 * j, v[j], inv, __mmask16(0xFFFF));
    }
  }
}

using LnRowsFn = void (*)(int8_t*, int64_t, float*, const float*, int64_t, int64_t, const float*,
                          const float*, double);

template <int... NV>
LnRowsFn ln_rows_for(int64_t nv, std::integer_sequence<int, NV...>) {
  LnRowsFn f = nullptr;
  ((nv == NV + 1 ? (f = layer_norm_quantize_rows<NV + 1>, 0) : 0), ...);
  return f;
}

}  // namespace

bool quantize_rows_layer_norm_avx512(int8_t* q, int64_t ldq, float* scale, const float* x,
                                     int64_t ldx, int64_t M, int64_t K, const float* weight,
                                     const float* bias, float eps) {
  if (K % 16 != 0 || K > 256 || K < 16) return false;
  ln_rows_for(K / 16, std::make_integer_sequence<int, 16>{})(q, ldq, scale, x, ldx, M, weight, bias,
                                                            double(eps));
  return true;
}

void qgemm_s32_vnni512(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
                       const QWeight& w) {
  TileOut o;
  o.C = acc, o.ld = ldc;
  run(o, qa, lda, M, w);
}

void qgemm_f32_vnni512(float* y, int64_t ldy, const int8_t* qa, int64_t lda, int64_t M,
                       const QWeight& w, const float* scale_x, const float* bias, bool accumulate) {
  TileOut o;
  o.Y = y, o.ld = ldy, o.sx = scale_x, o.bias = bias, o.accumulate = accumulate;
  run(o, qa, lda, M, w);
}

}  // namespace focus

#pragma GCC diagnostic pop
#pragma GCC pop_options
