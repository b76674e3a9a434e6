// Dropout kernels (see dropout.hpp). Four with one contract:
//   avx512:    Philox-4x32-10 on 16 counters per zmm (32x32->64 products by vpmuludq on even and
//              odd lanes), a 4x4 transpose into word order, each word's two 16-bit halves
//              widened to two elements, and masked scaling;
//   avx2:      the same on 8 counters per ymm (two halves a step), the mask as an AND;
//   lanes:     the same 16-counter steps in plain loops the compiler vectorises (any x86-64);
//   reference: philox4x32 per counter, element i from its 16-bit half, half / 2^16 >= p.
// The fast kernels compare the half with ceil(p * 2^16), which keeps exactly the elements whose
// half / 2^16 is >= p. Each 128-element step depends only on its counters, so the steps split
// over threads freely. Each can also record the keep decisions as bits (a step is 16 whole
// bytes); dropout_apply_bits applies recorded bits (AVX2, or the plain loop).
#include "focus/kernels/dropout.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "focus/kernels/cpu.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

std::atomic<bool> g_reference{[] {
  const char* e = std::getenv("FOCUS_DROPOUT");
  return e && std::strcmp(e, "reference") == 0;
}()};

constexpr int kLanes = 16;                               // Philox blocks per step
constexpr int64_t kStep = kDropoutPerCounter * kLanes;   // elements per step (128)
constexpr int64_t kParallel = 1 << 16;  // elements above which threads share the steps
constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

struct Params {
  uint32_t thr;  // keep iff the element's 16-bit half >= thr (<= 2^16)
  double scale;
};
Params params(double p) { return {static_cast<uint32_t>(std::ceil(p * 65536.0)), 1.0 / (1.0 - p)}; }

// Element e of a step: the 16-bit half e % 2 (low first) of word e / 2 of the step's words.
inline uint32_t half_of(const uint32_t* u, int64_t e) { return (u[e >> 1] >> (16 * (e & 1))) & 0xFFFFu; }

// ---- lanes: portable ----------------------------------------------------------------------------

// Philox on counters counter + l, l < kLanes; word j of lane l goes to u[4*l + j].
inline void philox_lanes(uint64_t key, uint64_t counter, uint32_t* u) {
  uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t c = counter + static_cast<uint64_t>(l);
    c0[l] = static_cast<uint32_t>(c);
    c1[l] = static_cast<uint32_t>(c >> 32);
    c2[l] = c3[l] = 0;
  }
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t p0 = static_cast<uint64_t>(M0) * c0[l];
      const uint64_t p1 = static_cast<uint64_t>(M1) * c2[l];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = static_cast<uint32_t>(p1);
      c3[l] = static_cast<uint32_t>(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += W0;
    k1 += W1;
  }
  for (int l = 0; l < kLanes; ++l) {
    u[4 * l] = c0[l];
    u[4 * l + 1] = c1[l];
    u[4 * l + 2] = c2[l];
    u[4 * l + 3] = c3[l];
  }
}

// Bits of the step's keep decisions for its first m elements: bytes bits[0 .. ceil(m / 8)).
inline void store_bits_lanes(uint8_t* bits, const uint32_t* u, int64_t m, uint32_t thr) {
  for (int64_t j = 0; 8 * j < m; ++j) {
    unsigned b = 0;
    for (int64_t t = 0; t < 8 && 8 * j + t < m; ++t) b |= unsigned(half_of(u, 8 * j + t) >= thr) << t;
    bits[j] = static_cast<uint8_t>(b);
  }
}

template <class T>
void apply_lanes(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, Params pr,
                 uint8_t* bits) {
  const T scale = static_cast<T>(pr.scale);
  const int64_t steps = (n + kStep - 1) / kStep;
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t s = 0; s < steps; ++s) {
    alignas(64) uint32_t u[4 * kLanes];
    philox_lanes(seed, offset + static_cast<uint64_t>(s * kLanes), u);
    const int64_t e0 = s * kStep, m = std::min(kStep, n - e0);
#pragma omp simd
    for (int64_t e = 0; e < m; ++e) out[e0 + e] = half_of(u, e) >= pr.thr ? in[e0 + e] * scale : T(0);
    if (bits) store_bits_lanes(bits + e0 / 8, u, m, pr.thr);
  }
}

// ---- avx512 ---------------------------------------------------------------------------------------

#define FOCUS_AVX512 __attribute__((target("avx512f")))
// GCC 12 flags the intrinsics' internal _mm512_undefined_* placeholders as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// hi and lo 32 bits of a * m in each 32-bit lane.
FOCUS_AVX512 inline void mulhilo(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// Philox on counters counter + l (l < 16, one per lane); u[q] holds words 16q .. 16q+15 of the
// step (the four words of blocks 4q .. 4q+3), i.e. its elements 32q .. 32q+31.
FOCUS_AVX512 inline void philox_avx512(uint64_t key, uint64_t counter, __m512i u[4]) {
  const __m512i lo = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter)));
  const __m512i hi = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter >> 32)));
  __m512i c0 = _mm512_add_epi32(lo, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  __m512i c1 = _mm512_mask_add_epi32(hi, _mm512_cmplt_epu32_mask(c0, lo), hi, _mm512_set1_epi32(1));
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(M0)), m1 = _mm512_set1_epi32(static_cast<int>(M1));
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    __m512i h0, l0, h1, l1;
    mulhilo(c0, m0, h0, l0);
    mulhilo(c2, m1, h1, l1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(h1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    c2 = _mm512_xor_si512(_mm512_xor_si512(h0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c1 = l1;
    c3 = l0;
    k0 += W0;
    k1 += W1;
  }
  // Within each 128-bit chunk k: v[m] = the four words of block 4k + m.
  const __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
  const __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
  const __m512i v0 = _mm512_unpacklo_epi64(t0, t2), v1 = _mm512_unpackhi_epi64(t0, t2);
  const __m512i v2 = _mm512_unpacklo_epi64(t1, t3), v3 = _mm512_unpackhi_epi64(t1, t3);
  // Transpose the 4x4 grid of chunks: u[q] = chunk q of v0, v1, v2, v3.
  const __m512i a01 = _mm512_shuffle_i32x4(v0, v1, 0x44), a23 = _mm512_shuffle_i32x4(v2, v3, 0x44);
  const __m512i b01 = _mm512_shuffle_i32x4(v0, v1, 0xEE), b23 = _mm512_shuffle_i32x4(v2, v3, 0xEE);
  u[0] = _mm512_shuffle_i32x4(a01, a23, 0x88);
  u[1] = _mm512_shuffle_i32x4(a01, a23, 0xDD);
  u[2] = _mm512_shuffle_i32x4(b01, b23, 0x88);
  u[3] = _mm512_shuffle_i32x4(b01, b23, 0xDD);
}

// out[e] = keep[e] ? in[e] * scale : 0 for the first m (<= 16) elements.
FOCUS_AVX512 inline void apply16(float* out, const float* in, int64_t m, __mmask16 keep, double scale) {
  const __mmask16 lm = m >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << m) - 1);
  const __m512 x = _mm512_maskz_loadu_ps(lm, in);
  _mm512_mask_storeu_ps(out, lm, _mm512_maskz_mul_ps(keep, x, _mm512_set1_ps(static_cast<float>(scale))));
}
FOCUS_AVX512 inline void apply16(double* out, const double* in, int64_t m, __mmask16 keep, double scale) {
  const __m512d s = _mm512_set1_pd(scale);
  for (int h = 0; h < 2 && 8 * h < m; ++h) {
    const int64_t mh = std::min<int64_t>(8, m - 8 * h);
    const __mmask8 lm = mh >= 8 ? __mmask8(0xFF) : __mmask8((1u << mh) - 1);
    const __mmask8 kh = static_cast<__mmask8>(keep >> (8 * h));
    const __m512d x = _mm512_maskz_loadu_pd(lm, in + 8 * h);
    _mm512_mask_storeu_pd(out + 8 * h, lm, _mm512_maskz_mul_pd(kh, x, s));
  }
}

template <class T>
FOCUS_AVX512 void apply_avx512(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, Params pr,
                               uint8_t* bits) {
  const int64_t steps = (n + kStep - 1) / kStep;
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t s = 0; s < steps; ++s) {
    __m512i u[4];
    philox_avx512(seed, offset + static_cast<uint64_t>(s * kLanes), u);
    const __m512i thr = _mm512_set1_epi32(static_cast<int>(pr.thr));
    for (int q = 0; q < 8; ++q) {  // 16 elements: the halves of 8 words of u[q / 2]
      const int64_t e = s * kStep + 16 * q;
      if (e >= n) break;
      const __m256i w = q % 2 ? _mm512_extracti64x4_epi64(u[q / 2], 1) : _mm512_castsi512_si256(u[q / 2]);
      const __mmask16 keep = _mm512_cmpge_epu32_mask(_mm512_cvtepu16_epi32(w), thr);
      apply16(out + e, in + e, n - e, keep, pr.scale);
      if (bits) {  // elements e .. e + 15 are bytes e / 8 and e / 8 + 1; none past n
        const unsigned k = n - e >= 16 ? unsigned(keep) : unsigned(keep) & ((1u << (n - e)) - 1);
        bits[e / 8] = static_cast<uint8_t>(k);
        if (n - e > 8) bits[e / 8 + 1] = static_cast<uint8_t>(k >> 8);
      }
    }
  }
}

#pragma GCC diagnostic pop

// ---- avx2 -----------------------------------------------------------------------------------------

#define FOCUS_AVX2 __attribute__((target("avx2,fma")))

// hi and lo 32 bits of a * m in each 32-bit lane.
FOCUS_AVX2 inline void mulhilo(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Philox on counters counter + l (l < 8, one per lane); u[q] holds words 8q .. 8q+7 of the 32
// (the four words of blocks 2q and 2q+1), i.e. elements 16q .. 16q+15 of the 64.
FOCUS_AVX2 inline void philox_avx2(uint64_t key, uint64_t counter, __m256i u[4]) {
  const __m256i lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter)));
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter >> 32)));
  __m256i c0 = _mm256_add_epi32(lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  // Carry into the high word where the low word wrapped (unsigned c0 < lo, by flipping signs).
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(lo, sign), _mm256_xor_si256(c0, sign));
  __m256i c1 = _mm256_sub_epi32(hi, wrapped);
  __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(M0)), m1 = _mm256_set1_epi32(static_cast<int>(M1));
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    __m256i h0, l0, h1, l1;
    mulhilo(c0, m0, h0, l0);
    mulhilo(c2, m1, h1, l1);
    c0 = _mm256_xor_si256(_mm256_xor_si256(h1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
    c2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
    c1 = l1;
    c3 = l0;
    k0 += W0;
    k1 += W1;
  }
  // Within each 128-bit half k: v[m] = the four words of block 4k + m.
  const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
  const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
  const __m256i v0 = _mm256_unpacklo_epi64(t0, t2), v1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i v2 = _mm256_unpacklo_epi64(t1, t3), v3 = _mm256_unpackhi_epi64(t1, t3);
  u[0] = _mm256_permute2x128_si256(v0, v1, 0x20);  // blocks 0, 1
  u[1] = _mm256_permute2x128_si256(v2, v3, 0x20);  // blocks 2, 3
  u[2] = _mm256_permute2x128_si256(v0, v1, 0x31);  // blocks 4, 5
  u[3] = _mm256_permute2x128_si256(v2, v3, 0x31);  // blocks 6, 7
}

// out[e] = keep[e] ? in[e] * scale : 0 for 8 elements (keep: all-ones lanes).
FOCUS_AVX2 inline void apply8(float* out, const float* in, __m256i keep, double scale) {
  const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(in), _mm256_set1_ps(static_cast<float>(scale)));
  _mm256_storeu_ps(out, _mm256_and_ps(x, _mm256_castsi256_ps(keep)));
}
FOCUS_AVX2 inline void apply8(double* out, const double* in, __m256i keep, double scale) {
  const __m256d s = _mm256_set1_pd(scale);
  const __m256i k0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(keep));
  const __m256i k1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(keep, 1));
  _mm256_storeu_pd(out, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(in), s), _mm256_castsi256_pd(k0)));
  _mm256_storeu_pd(out + 4, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(in + 4), s), _mm256_castsi256_pd(k1)));
}

// The same steps of kLanes counters as the other kernels, as two halves of 8.
template <class T>
FOCUS_AVX2 void apply_avx2(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, Params pr,
                           uint8_t* bits) {
  const int64_t steps = (n + kStep - 1) / kStep;
  const T scale = static_cast<T>(pr.scale);
  // thr - 1 >= -1: half >= thr as a signed compare (both sides below 2^16 + 1).
  const __m256i thr1 = _mm256_set1_epi32(static_cast<int>(pr.thr) - 1);
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t s = 0; s < steps; ++s) {
    for (int half = 0; half < 2; ++half) {
      const int64_t e0 = s * kStep + (kStep / 2) * half;
      if (e0 >= n) break;
      __m256i u[4];
      philox_avx2(seed, offset + static_cast<uint64_t>(s * kLanes + 8 * half), u);
      for (int q = 0; q < 8; ++q) {  // 8 elements: the halves of 4 words of u[q / 2]
        const int64_t e = e0 + 8 * q;
        if (e >= n) break;
        const __m128i w = q % 2 ? _mm256_extracti128_si256(u[q / 2], 1) : _mm256_castsi256_si128(u[q / 2]);
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_cvtepu16_epi32(w), thr1);
        if (bits) {
          const int b = _mm256_movemask_ps(_mm256_castsi256_ps(keep));
          bits[e / 8] = static_cast<uint8_t>(n - e >= 8 ? b : b & ((1 << (n - e)) - 1));
        }
        if (n - e >= 8) {
          apply8(out + e, in + e, keep, pr.scale);
        } else {
          alignas(32) int32_t k[8];
          _mm256_store_si256(reinterpret_cast<__m256i*>(k), keep);
          for (int64_t t = 0; t < n - e; ++t) out[e + t] = k[t] ? in[e + t] * scale : T(0);
        }
      }
    }
  }
}

// out = bits ? in * scale : 0 for the whole bytes (8 elements each); the caller does the tail.
template <class T>
FOCUS_AVX2 void apply_bits_avx2(T* out, const T* in, int64_t full, const uint8_t* bits, double p) {
  const double scale = 1.0 / (1.0 - p);
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
#pragma omp parallel for schedule(static) if (8 * full > kParallel)
  for (int64_t j = 0; j < full; ++j) {
    const __m256i b = _mm256_and_si256(_mm256_set1_epi32(bits[j]), sel);
    apply8(out + 8 * j, in + 8 * j, _mm256_cmpeq_epi32(b, sel), scale);
  }
}

}  // namespace

void set_dropout_reference(bool on) { g_reference = on; }
bool dropout_reference() { return g_reference.load(); }

template <class T>
void dropout_apply(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                   uint8_t* bits) {
  if (dropout_reference()) return dropout_apply_reference(out, in, n, seed, offset, p, bits);
  if (active_isa() == Isa::Avx512) return dropout_apply_avx512(out, in, n, seed, offset, p, bits);
  if (active_isa() == Isa::Avx2) return dropout_apply_avx2(out, in, n, seed, offset, p, bits);
  dropout_apply_lanes(out, in, n, seed, offset, p, bits);
}

template <class T>
void dropout_apply_avx512(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                          uint8_t* bits) {
  apply_avx512(out, in, n, seed, offset, params(p), bits);
}

template <class T>
void dropout_apply_avx2(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                        uint8_t* bits) {
  apply_avx2(out, in, n, seed, offset, params(p), bits);
}

template <class T>
void dropout_apply_lanes(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                         uint8_t* bits) {
  apply_lanes(out, in, n, seed, offset, params(p), bits);
}

template <class T>
void dropout_apply_reference(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset,
                             double p, uint8_t* bits) {
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (int64_t i = 0; i < n; ++i) {
    const auto r = philox4x32(seed, 0, offset + static_cast<uint64_t>(i / kDropoutPerCounter));
    const uint32_t half = (r[(i / 2) % 4] >> (16 * (i % 2))) & 0xFFFFu;
    const bool keep = static_cast<double>(half) / 65536.0 >= p;
    out[i] = keep ? in[i] * scale : T(0);
    if (bits) {
      if (i % 8 == 0) bits[i / 8] = 0;
      bits[i / 8] = static_cast<uint8_t>(bits[i / 8] | unsigned(keep) << (i % 8));
    }
  }
}

template <class T>
void dropout_apply_bits(T* out, const T* in, int64_t n, const uint8_t* bits, double p) {
  if (!dropout_reference() && static_cast<int>(active_isa()) >= static_cast<int>(Isa::Avx2))
    return dropout_apply_bits_avx2(out, in, n, bits, p);
  dropout_apply_bits_reference(out, in, n, bits, p);
}

template <class T>
void dropout_apply_bits_avx2(T* out, const T* in, int64_t n, const uint8_t* bits, double p) {
  const int64_t full = n / 8;
  apply_bits_avx2(out, in, full, bits, p);
  dropout_apply_bits_reference(out + 8 * full, in + 8 * full, n - 8 * full, bits + full, p);
}

template <class T>
void dropout_apply_bits_reference(T* out, const T* in, int64_t n, const uint8_t* bits, double p) {
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (int64_t i = 0; i < n; ++i) out[i] = (bits[i >> 3] >> (i & 7)) & 1 ? in[i] * scale : T(0);
}

#define FOCUS_DROPOUT_INSTANTIATE(T)                                                               \
  template void dropout_apply<T>(T*, const T*, int64_t, uint64_t, uint64_t, double, uint8_t*);        \
  template void dropout_apply_avx512<T>(T*, const T*, int64_t, uint64_t, uint64_t, double, uint8_t*); \
  template void dropout_apply_avx2<T>(T*, const T*, int64_t, uint64_t, uint64_t, double, uint8_t*);   \
  template void dropout_apply_lanes<T>(T*, const T*, int64_t, uint64_t, uint64_t, double, uint8_t*);  \
  template void dropout_apply_reference<T>(T*, const T*, int64_t, uint64_t, uint64_t, double,         \
                                           uint8_t*);                                                 \
  template void dropout_apply_bits<T>(T*, const T*, int64_t, const uint8_t*, double);                 \
  template void dropout_apply_bits_avx2<T>(T*, const T*, int64_t, const uint8_t*, double);            \
  template void dropout_apply_bits_reference<T>(T*, const T*, int64_t, const uint8_t*, double);
FOCUS_DROPOUT_INSTANTIATE(float)
FOCUS_DROPOUT_INSTANTIATE(double)
#undef FOCUS_DROPOUT_INSTANTIATE

}  // namespace focus
