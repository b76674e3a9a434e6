// int8 GEMM (see qgemm.hpp): path choice, weight packing, row quantisation, the scalar
// reference, and the driver (quantise a block of rows, integer product, dequantise + epilogue).
// The vector paths live in qgemm_avx512.cpp and qgemm_avx2.cpp under their target pragmas.
#include "focus/kernels/qgemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/norm.hpp"
#include "focus/kernels/parallel.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

constexpr int64_t kMaxK = 65536;
constexpr int64_t kRowBlock = 96;  // rows quantised and multiplied at a time (L2-sized buffers)

bool cpu_has_vnni512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni");
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

std::shared_ptr<int8_t[]> aligned_bytes(size_t n) {
  void* p = std::aligned_alloc(64, round_up(int64_t(std::max<size_t>(n, 1)), 64));
  FOCUS_CHECK(p != nullptr, ValueError, "pack_qweight: cannot allocate {} bytes", n);
  std::memset(p, 0, n);
  return std::shared_ptr<int8_t[]>(static_cast<int8_t*>(p), [](int8_t* q) { std::free(q); });
}

}  // namespace

QPath qgemm_path() {
  static const QPath p = [] {
    const Isa isa = active_isa();
    if (isa == Isa::Avx512 && cpu_has_vnni512()) return QPath::Vnni512;
    if (isa == Isa::Avx512 || isa == Isa::Avx2) return QPath::Avx2;
    return QPath::Scalar;
  }();
  return p;
}

std::string qpath_name(QPath p) {
  switch (p) {
    case QPath::Vnni512: return "avx512-vnni";
    case QPath::Avx2: return "avx2";
    default: return "scalar";
  }
}

bool qpath_supported(QPath p) {
  const Isa hw = detect_isa();
  switch (p) {
    case QPath::Vnni512: return hw == Isa::Avx512 && cpu_has_vnni512();
    case QPath::Avx2: return hw != Isa::Scalar;
    default: return true;
  }
}

size_t QWeight::bytes() const {
  const size_t panel = path == QPath::Vnni512 ? size_t(Np * Kp)
                       : path == QPath::Avx2  ? size_t(Np * Kp) * 2
                                              : 0;
  return q.size() + scale.size() * 4 + colsum.size() * 4 + shift.size() * 4 + panel;
}

QWeight pack_qweight(const float* W, int64_t N, int64_t K) {
  return pack_qweight(W, N, K, qgemm_path());
}

QWeight pack_qweight(const float* W, int64_t N, int64_t K, QPath path) {
  FOCUS_CHECK(N >= 1 && K >= 1 && K <= kMaxK, ValueError,
              "pack_qweight: weight ({}, {}) must have N >= 1 and 1 <= K <= {}", N, K, kMaxK);
  QWeight w;
  w.N = N;
  w.K = K;
  w.path = path;
  w.q.resize(size_t(N * K));
  w.scale.resize(size_t(N));
  w.colsum.resize(size_t(N));
  for (int64_t n = 0; n < N; ++n) {
    const float* row = W + n * K;
    float amax = 0;
    for (int64_t k = 0; k < K; ++k) {
      FOCUS_CHECK(std::isfinite(row[k]), ValueError,
                  "pack_qweight: weight ({}, {}) has a non-finite value at row {}, column {}", N, K,
                  n, k);
      amax = std::max(amax, std::fabs(row[k]));
    }
    const float s = amax / 127.0f;
    w.scale[size_t(n)] = s;
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int v = int(std::clamp(std::nearbyint(row[k] * inv), -127.0f, 127.0f));
      w.q[size_t(n * K + k)] = int8_t(v);
      sum += v;
    }
    w.colsum[size_t(n)] = sum;
  }
  if (path == QPath::Vnni512) {
    // [Np/16][Kp/4][16][4]: one 64-byte vector holds 4 consecutive k of 16 output channels.
    w.Kp = round_up(K, 4);
    w.Np = round_up(N, 16);
    w.panels = aligned_bytes(size_t(w.Np * w.Kp));
    w.shift.assign(size_t(w.Np), 0);
    for (int64_t n = 0; n < N; ++n) w.shift[size_t(n)] = 128 * w.colsum[size_t(n)];
    int8_t* P = w.panels.get();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        P[((n / 16 * (w.Kp / 4) + k / 4) * 16 + n % 16) * 4 + k % 4] = w.q[size_t(n * K + k)];
  } else if (path == QPath::Avx2) {
    // [Np/8][Kp/2][8][2] int16: one 32-byte vector holds 2 consecutive k of 8 output channels.
    w.Kp = round_up(K, 4);
    w.Np = round_up(N, 8);
    w.panels = aligned_bytes(size_t(w.Np * w.Kp) * 2);
    auto* P = reinterpret_cast<int16_t*>(w.panels.get());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        P[((n / 8 * (w.Kp / 2) + k / 2) * 8 + n % 8) * 2 + k % 2] = w.q[size_t(n * K + k)];
  } else {
    w.Kp = K;
    w.Np = N;
  }
  return w;
}

void quantize_rows(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx, int64_t M,
                   int64_t K) {
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * ldx;
    float amax = 0;
#pragma omp simd reduction(max : amax)
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(row[k]));
    const float s = amax / 127.0f;
    scale[m] = s;
    const float inv = s > 0 ? 127.0f / amax : 0.0f;
    int8_t* out = q + m * ldq;
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) {
      // Round half to even (nearbyint), clamped: |row * inv| <= 127 up to rounding.
      const float v = std::min(127.0f, std::max(-127.0f, std::nearbyint(row[k] * inv)));
      out[k] = int8_t(int(v));
    }
  }
}

void quantize_rows_for(const QWeight& w, int8_t* q, int64_t ldq, float* scale, const float* x,
                       int64_t ldx, int64_t M) {
  if (w.path == QPath::Vnni512)
    quantize_rows_avx512(q, ldq, scale, x, ldx, M, w.K);
  else if (w.path == QPath::Avx2)
    quantize_rows_avx2(q, ldq, scale, x, ldx, M, w.K);
  else
    quantize_rows(q, ldq, scale, x, ldx, M, w.K);
}

void quantize_rows_layer_norm_for(const QWeight& w, int8_t* q, int64_t ldq, float* scale,
                                  const float* x, int64_t ldx, int64_t M, const float* weight,
                                  const float* bias, float eps) {
  if (w.path == QPath::Vnni512 &&
      quantize_rows_layer_norm_avx512(q, ldq, scale, x, ldx, M, w.K, weight, bias, eps))
    return;
  thread_local std::vector<float> t, stat;  // (M, K) normalised rows; mean and rstd
  t.resize(std::max(t.size(), size_t(M * w.K)));
  stat.resize(std::max(stat.size(), size_t(2 * M)));
  for (int64_t m = 0; m < M; ++m)
    layer_norm_row<float>(t.data() + m * w.K, stat.data() + m, stat.data() + M + m, x + m * ldx,
                          weight, bias, w.K, double(eps));
  quantize_rows_for(w, q, ldq, scale, t.data(), w.K, M);
}

void qgemm_s32_scalar(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
                      const QWeight& w) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < w.N; ++n) {
      const int8_t* a = qa + m * lda;
      const int8_t* b = w.q.data() + n * w.K;
      int32_t s = 0;
      for (int64_t k = 0; k < w.K; ++k) s += int32_t(a[k]) * int32_t(b[k]);
      acc[m * ldc + n] = s;
    }
}

void qgemm_s32(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
               const QWeight& w) {
  switch (w.path) {
    case QPath::Vnni512: return qgemm_s32_vnni512(acc, ldc, qa, lda, M, w);
    case QPath::Avx2: return qgemm_s32_avx2(acc, ldc, qa, lda, M, w);
    default: return qgemm_s32_scalar(acc, ldc, qa, lda, M, w);
  }
}

void qgemm_dequant(float* y, int64_t ldy, const int8_t* qa, int64_t lda, int64_t M,
                   const QWeight& w, const float* scale_x, const float* bias, bool accumulate) {
  if (M <= 0) return;
  if (w.path == QPath::Vnni512) return qgemm_f32_vnni512(y, ldy, qa, lda, M, w, scale_x, bias, accumulate);
  thread_local std::vector<int32_t> acc;
  thread_local std::vector<float> v;
  acc.resize(std::max(acc.size(), size_t(M * w.N)));
  qgemm_s32(acc.data(), w.N, qa, lda, M, w);
  if (!accumulate) return qdequantize_rows(y, ldy, acc.data(), w.N, scale_x, M, w, bias);
  v.resize(std::max(v.size(), size_t(M * w.N)));
  qdequantize_rows(v.data(), w.N, acc.data(), w.N, scale_x, M, w, bias);
  for (int64_t m = 0; m < M; ++m) {
    float* o = y + m * ldy;
    const float* a = v.data() + m * w.N;
#pragma omp simd
    for (int64_t n = 0; n < w.N; ++n) o[n] += a[n];
  }
}

void qdequantize_rows(float* y, int64_t ldy, const int32_t* acc, int64_t ldc, const float* sx,
                      int64_t M, const QWeight& w, const float* bias) {
  const float* sw = w.scale.data();
  for (int64_t m = 0; m < M; ++m) {
    float* out = y + m * ldy;
    const int32_t* a = acc + m * ldc;
    const float s = sx[m];
    if (bias) {
#pragma omp simd
      for (int64_t n = 0; n < w.N; ++n) out[n] = float(a[n]) * (s * sw[n]) + bias[n];
    } else {
#pragma omp simd
      for (int64_t n = 0; n < w.N; ++n) out[n] = float(a[n]) * (s * sw[n]);
    }
  }
}

namespace {

void epilogue(float* y, int64_t ldy, const int32_t* acc, int64_t ldc, const float* sx, int64_t M,
              const QWeight& w, const float* bias, QEpilogue ep) {
  qdequantize_rows(y, ldy, acc, ldc, sx, M, w, bias);
  for (int64_t m = 0; m < M; ++m) {
    float* out = y + m * ldy;
    if (ep == QEpilogue::Relu) {
#pragma omp simd
      for (int64_t n = 0; n < w.N; ++n) out[n] = std::max(out[n], 0.0f);
    } else if (ep == QEpilogue::Gelu) {
      for (int64_t n = 0; n < w.N; ++n)
        out[n] = 0.5f * out[n] * (1.0f + std::erf(out[n] * 0.70710678118654752f));
    }
  }
}

}  // namespace

void qlinear_forward(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t M,
                     const QWeight& w, const float* bias, QEpilogue ep) {
  if (M <= 0) return;
  const bool parallel = M * w.N * w.K >= (int64_t(1) << 18);
  split_over_threads(M, 8, parallel, [&](int64_t lo, int64_t hi) {
    const int64_t rows = std::min(kRowBlock, hi - lo);
    // Per-thread scratch kept between calls (no allocation, no page faults per call).
    thread_local std::vector<int8_t> q;
    thread_local std::vector<float> sx;
    thread_local std::vector<int32_t> acc;
    q.resize(std::max(q.size(), static_cast<size_t>(rows * w.K)));
    sx.resize(std::max(sx.size(), static_cast<size_t>(rows)));
    acc.resize(std::max(acc.size(), static_cast<size_t>(rows * w.N)));
    for (int64_t m0 = lo; m0 < hi; m0 += kRowBlock) {
      const int64_t mb = std::min(kRowBlock, hi - m0);
      quantize_rows_for(w, q.data(), w.K, sx.data(), x + m0 * ldx, ldx, mb);
      qgemm_s32(acc.data(), w.N, q.data(), w.K, mb, w);
      epilogue(y + m0 * ldy, ldy, acc.data(), w.N, sx.data(), mb, w, bias, ep);
    }
  });
}

}  // namespace focus
