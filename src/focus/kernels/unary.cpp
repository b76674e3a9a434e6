// The unary ops' forward and backward loops and the math-kernel switch (see unary.hpp).
// Contiguous arrays only; large arrays run in parallel. GELU's tanh form is computed through
// 1 + tanh(u) = 2 sigmoid(2u), which needs only exp and stays accurate in both tails.
#include "focus/kernels/unary.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "focus/kernels/cpu.hpp"

namespace focus {

namespace {

std::atomic<MathKernel> g_math{[] {
  const char* e = std::getenv("FOCUS_MATH");
  return e && std::strcmp(e, "libm") == 0 ? MathKernel::Libm : MathKernel::Fast;
}()};

constexpr int64_t kParallel = 1 << 15;  // elements; below this the loop runs on one thread
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
constexpr double kGeluCubic = 0.044715;

// y[i] = f(x[i]) and dx[i] = g(dy[i], xy[i]); f and g capture constants by value so the loops
// see only the arrays and vectorise.
template <class T, class F>
inline void map1(T* __restrict y, const T* __restrict x, int64_t n, F f) {
#pragma omp parallel for simd if (parallel : n > kParallel)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
template <class T, class G>
inline void map2(T* __restrict dx, const T* __restrict dy, const T* __restrict xy, int64_t n, G g) {
#pragma omp parallel for simd if (parallel : n > kParallel)
  for (int64_t i = 0; i < n; ++i) dx[i] = g(dy[i], xy[i]);
}

#if defined(__AVX512F__)
// GCC 12 flags the intrinsics' internal _mm512_undefined_* placeholders as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// vexp<float> on 16 lanes, the same steps (unary.hpp).
inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-86.5f), hi = _mm512_set1_ps(88.72283f);
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.4426950408889634f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.4286068203094172e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (const float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  const __m512i e = _mm512_slli_epi32(
      _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(126)), 23);
  __m512 res = _mm512_mul_ps(_mm512_mul_ps(p, _mm512_castsi512_ps(e)), _mm512_set1_ps(2.0f));
  res = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), res, _mm512_setzero_ps());
  res = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), res,
                             _mm512_set1_ps(std::numeric_limits<float>::infinity()));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), res, x);
}

// normal_cdf<float>(x, gauss) on 16 lanes, the same steps (unary.hpp).
inline __m512 cdf16(__m512 x, __m512& gauss) {
  const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
  const __m512 a = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678f));
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(half, a, one));
  __m512 r = _mm512_set1_ps(kErfcxPoly[9]);
  for (int i = 8; i >= 0; --i) r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(kErfcxPoly[i]));
  const __m512 x2 = _mm512_mul_ps(x, x), u = _mm512_mul_ps(half, x2);
  const __m512 du = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(u, _mm512_set1_ps(100.0f), _CMP_LT_OQ),
                                        half, _mm512_fmsub_ps(x, x, x2));
  const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), u));
  gauss = _mm512_fnmadd_ps(e, du, e);
  const __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(half, gauss), r);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ),
                              _mm512_sub_ps(one, half_erfc), half_erfc);
}

// Blocks of 16 (the last one masked) in parallel: fn(i, mask).
template <class F>
inline void blocks16(int64_t n, F fn) {
  const int64_t blocks = (n + 15) / 16;
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i = b * 16, left = n - i;
    fn(i, left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1));
  }
}

// y = x Phi(x).
void gelu_forward_avx512(float* y, const float* x, int64_t n) {
  blocks16(n, [&](int64_t i, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 gauss;
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, cdf16(v, gauss)));
  });
}

// dx = dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi).
void gelu_backward_avx512(float* dx, const float* dy, const float* x, int64_t n) {
  blocks16(n, [&](int64_t i, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    __m512 gauss;
    const __m512 cdf = cdf16(v, gauss);
    const __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(v, _mm512_set1_ps(float(kInvSqrt2Pi))), gauss, cdf);
    _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), d));
  });
}

// y = x < 0 ? 0 : x (NaN and -0 pass through, as in the scalar loop).
void relu_forward_avx512(float* y, const float* x, int64_t n) {
  blocks16(n, [&](int64_t i, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mask_blend_ps(neg, v, _mm512_setzero_ps()));
  });
}

// dx = y > 0 ? dy : 0, from the output y.
void relu_backward_avx512(float* dx, const float* dy, const float* y, int64_t n) {
  blocks16(n, [&](int64_t i, __mmask16 m) {
    const __mmask16 pos =
        _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, y + i), _mm512_setzero_ps(), _CMP_GT_OQ);
    _mm512_mask_storeu_ps(dx + i, m, _mm512_maskz_loadu_ps(pos & m, dy + i));
  });
}

// The AVX-512 loops apply: F32 on an AVX-512 CPU (for GELU, with the fast math).
template <class T, class M>
inline bool use_avx512() {
  return std::is_same_v<T, float> && std::is_same_v<M, FastMath> && active_isa() == Isa::Avx512;
}
inline bool use_avx512() { return active_isa() == Isa::Avx512; }
#pragma GCC diagnostic pop
#endif

template <class T, class M>
void forward_impl(UnaryOp op, T* y, const T* x, int64_t n, T p) {
  const T k = T(kSqrt2OverPi), c = T(kGeluCubic);
  switch (op) {
    case UnaryOp::Exp:
      return map1(y, x, n, [](T v) { return M::exp(v); });
    case UnaryOp::Log:
      return map1(y, x, n, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt:
      return map1(y, x, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::Tanh:
      return map1(y, x, n, [](T v) { return std::tanh(v); });
    case UnaryOp::Sigmoid:
      return map1(y, x, n, [](T v) { return T(1) / (T(1) + M::exp(-v)); });
    case UnaryOp::Relu:
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>)
        if (use_avx512()) return relu_forward_avx512(y, x, n);
#endif
      return map1(y, x, n, [](T v) { return v < T(0) ? T(0) : v; });
    case UnaryOp::Gelu:
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>)
        if (use_avx512<T, M>()) return gelu_forward_avx512(y, x, n);
#endif
      return map1(y, x, n, [](T v) { return v * M::cdf(v); });
    case UnaryOp::GeluTanh:
      return map1(y, x, n, [k, c](T v) {  // x (1 + tanh u) / 2 = x sigmoid(2u)
        const T u = k * (v + c * v * v * v);
        return v / (T(1) + M::exp(T(-2) * u));
      });
    case UnaryOp::Square:
      return map1(y, x, n, [](T v) { return v * v; });
    case UnaryOp::Pow:
      return map1(y, x, n, [p](T v) { return std::pow(v, p); });
    case UnaryOp::Abs:
      return map1(y, x, n, [](T v) { return std::abs(v); });
  }
}

template <class T, class M>
void backward_impl(UnaryOp op, T* dx, const T* dy, const T* xy, int64_t n, T p) {
  const T k = T(kSqrt2OverPi), c = T(kGeluCubic), inv_sqrt_2pi = T(kInvSqrt2Pi);
  switch (op) {
    case UnaryOp::Exp:
      return map2(dx, dy, xy, n, [](T g, T y) { return g * y; });
    case UnaryOp::Log:
      return map2(dx, dy, xy, n, [](T g, T x) { return g / x; });
    case UnaryOp::Sqrt:
      return map2(dx, dy, xy, n, [](T g, T y) { return g / (T(2) * y); });
    case UnaryOp::Tanh:
      return map2(dx, dy, xy, n, [](T g, T y) { return g * (T(1) - y * y); });
    case UnaryOp::Sigmoid:
      return map2(dx, dy, xy, n, [](T g, T y) { return g * y * (T(1) - y); });
    case UnaryOp::Relu:
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>)
        if (use_avx512()) return relu_backward_avx512(dx, dy, xy, n);
#endif
      return map2(dx, dy, xy, n, [](T g, T y) { return y > T(0) ? g : T(0); });
    case UnaryOp::Gelu:
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>)
        if (use_avx512<T, M>()) return gelu_backward_avx512(dx, dy, xy, n);
#endif
      return map2(dx, dy, xy, n, [inv_sqrt_2pi](T g, T x) {  // Phi(x) + x phi(x)
        T gauss;
        const T cdf = M::cdf(x, gauss);
        return g * (cdf + x * inv_sqrt_2pi * gauss);
      });
    case UnaryOp::GeluTanh:
      return map2(dx, dy, xy, n, [k, c](T g, T x) {  // d/dx x s(2u) = s + x s (1 - s) 2 u'
        const T u = k * (x + c * x * x * x);
        const T s = T(1) / (T(1) + M::exp(T(-2) * u));
        return g * (s + x * s * (T(1) - s) * T(2) * k * (T(1) + T(3) * c * x * x));
      });
    case UnaryOp::Square:
      return map2(dx, dy, xy, n, [](T g, T x) { return T(2) * x * g; });
    case UnaryOp::Pow:
      if (p == T(0)) return map2(dx, dy, xy, n, [](T, T) { return T(0); });
      return map2(dx, dy, xy, n, [p](T g, T x) { return g * p * std::pow(x, p - T(1)); });
    case UnaryOp::Abs:
      return map2(dx, dy, xy, n, [](T g, T x) { return x > T(0) ? g : x < T(0) ? -g : T(0); });
  }
}

}  // namespace

void set_math_kernel(MathKernel k) { g_math.store(k); }
MathKernel math_kernel() { return g_math.load(); }

template <class T>
void unary_forward(UnaryOp op, T* y, const T* x, int64_t n, double p) {
  dispatch_math([&]<class M>() { forward_impl<T, M>(op, y, x, n, static_cast<T>(p)); });
}

template <class T>
void unary_backward(UnaryOp op, T* dx, const T* dy, const T* xy, int64_t n, double p) {
  dispatch_math([&]<class M>() { backward_impl<T, M>(op, dx, dy, xy, n, static_cast<T>(p)); });
}

template void unary_forward<float>(UnaryOp, float*, const float*, int64_t, double);
template void unary_forward<double>(UnaryOp, double*, const double*, int64_t, double);
template void unary_backward<float>(UnaryOp, float*, const float*, const float*, int64_t, double);
template void unary_backward<double>(UnaryOp, double*, const double*, const double*, int64_t,
                                     double);

}  // namespace focus
