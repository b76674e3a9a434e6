// Pointwise math for the kernels: a vectorisable exp and normal CDF (shared with the softmax,
// norm and loss kernels), and the raw forward/backward loops of the unary ops (ops/unary.cpp).
//   vexp(x): exp without a libm call, written so GCC vectorises the loops around it. Range
//     reduction x = n ln2 + r (|r| <= ln2/2, ln2 split in two for an exact n*ln2_hi), Taylor
//     polynomial of degree 7 (F32) / 13 (F64), times 2^n built in the exponent bits. About 1 ulp.
//     Results below the smallest normal flush to 0 (x < -86.5 F32, x < -708 F64); x past the
//     largest finite result gives +inf; NaN propagates.
//   normal_cdf(x) = P(N(0,1) <= x) (GELU): F32 in float arithmetic as exp(-x^2/2) times a fit of
//     ours to erfc(z) e^{z^2} (z = |x|/sqrt2) in t = 1/(1 + z/2), one formula for every x
//     (relative error < 5e-7 over [-13, 8], both tails); F64 calls std::erfc. kernels/unary_simd.hpp
//     has the same F32 algorithm on AVX2 / AVX-512 vectors for the GELU loops.
// MathKernel::Libm (FOCUS_MATH=libm, or set_math_kernel) makes every kernel use std::exp and
// std::erfc instead: the reference the tests compare the fast path with.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace focus {

enum class MathKernel { Fast, Libm };
void set_math_kernel(MathKernel k);
MathKernel math_kernel();  // Fast unless FOCUS_MATH=libm or set otherwise

// e^r for vexp's reduced argument (|r| <= ln2 / 2) by its Taylor polynomial, degree 7 (F32) or
// 13 (F64). X is T or a GCC vector of T (the fused attention's vector exp shares it).
template <class T, class X>
inline X exp_reduced(X r) {
  X p;
  if constexpr (std::is_same_v<T, float>) {
    p = r * T(1.0 / 5040) + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
    p = p * r + T(1.0 / 6);
    p = p * r + T(0.5);
  } else {
    p = r * T(1.0 / 6227020800) + T(1.0 / 479001600);
    p = p * r + T(1.0 / 39916800);
    p = p * r + T(1.0 / 3628800);
    p = p * r + T(1.0 / 362880);
    p = p * r + T(1.0 / 40320);
    p = p * r + T(1.0 / 5040);
    p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
    p = p * r + T(1.0 / 6);
    p = p * r + T(0.5);
  }
  p = p * r + T(1);
  return p * r + T(1);
}

template <class T>
inline T vexp(T x) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  constexpr bool F = std::is_same_v<T, float>;
  using I = std::conditional_t<F, int32_t, int64_t>;
  constexpr T lo = F ? T(-86.5) : T(-708.0);  // 2^n stays normal: n >= -125 (F32), -1021 (F64)
  constexpr T hi = F ? T(88.72283) : T(709.782712893384);  // log of the largest finite value
  constexpr T log2e = T(1.4426950408889634);
  constexpr T ln2_hi = F ? T(0.693145751953125) : T(0.6931471803691238);  // few mantissa bits
  constexpr T ln2_lo = F ? T(1.4286068203094172e-06) : T(1.9082149292705877e-10);
  constexpr T round_magic = F ? T(12582912.0) : T(6755399441055744.0);  // 1.5 * 2^mantissa
  constexpr int mant = F ? 23 : 52;
  constexpr I bias = F ? 126 : 1022;  // 2^(n-1): the final *2 reaches n = 128 / 1024
  T xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const T n = (xc * log2e + round_magic) - round_magic;  // round to nearest
  T r = xc - n * ln2_hi;
  r = r - n * ln2_lo;
  const T p = exp_reduced<T>(r);
  const T scale = std::bit_cast<T>(static_cast<I>((static_cast<I>(n) + bias) << mant));
  T res = p * scale * T(2);
  res = x < lo ? T(0) : res;
  res = x > hi ? std::numeric_limits<T>::infinity() : res;
  return x != x ? x : res;
}

// erfc(a) e^{a^2} ~ sum_i kErfcxPoly[i] t^i with t = 1 / (1 + a/2), for a in [0, 9.5]: our fit
// (least squares on Chebyshev nodes in t, reweighted towards minimax), relative error 3e-8.
inline constexpr float kErfcxPoly[10] = {
    -7.8457362889891884e-06f, 0.28226053202576606f, 0.28074430410009299f, 0.25157671491395173f,
    0.17572944316966813f,     0.028000865321364192f, 0.20733771864496658f, -0.43058713769190216f,
    0.25907376677081384f,     -0.054128391921692769f};

// Phi(x) = P(N(0,1) <= x) and gauss = exp(-x^2/2), see the file comment. The exponent is split
// exactly: x^2/2 = u + du with u the float product, so exp(-x^2/2) = exp(-u) (1 - du) to a
// relative 1e-14 and the tails keep their relative accuracy.
template <class T>
inline T normal_cdf(T x, T& gauss) {
  if constexpr (std::is_same_v<T, double>) {
    gauss = vexp(-0.5 * x * x);
    return 0.5 * std::erfc(-x * 0.7071067811865476);
  } else {
    const float a = (x < 0 ? -x : x) * 0.70710678f, t = 1.0f / (1.0f + 0.5f * a);
    float r = kErfcxPoly[9];
    for (int i = 8; i >= 0; --i) r = r * t + kErfcxPoly[i];
    const float x2 = x * x, u = 0.5f * x2;
    const float du = u < 100.0f ? 0.5f * std::fma(x, x, -x2) : 0.0f;  // no inf - inf
    const float e = vexp(-u);
    gauss = e - e * du;
    const float half_erfc = 0.5f * gauss * r;  // P(N(0,1) > |x|)
    return x < 0 ? half_erfc : 1.0f - half_erfc;
  }
}
template <class T>
inline T normal_cdf(T x) {
  T gauss;
  return normal_cdf(x, gauss);
}

// The math the kernels call, chosen once per kernel call by math_kernel().
struct FastMath {
  template <class T>
  static T exp(T x) {
    return vexp(x);
  }
  template <class T>
  static T cdf(T x) {
    return normal_cdf(x);
  }
  template <class T>
  static T cdf(T x, T& gauss) {  // also gauss = exp(-x^2/2)
    return normal_cdf(x, gauss);
  }
};
struct LibmMath {
  template <class T>
  static T exp(T x) {
    return std::exp(x);
  }
  template <class T>
  static T cdf(T x) {
    return T(0.5 * std::erfc(-double(x) * 0.7071067811865476));
  }
  template <class T>
  static T cdf(T x, T& gauss) {
    gauss = T(std::exp(-0.5 * double(x) * double(x)));
    return cdf(x);
  }
};

// Runs fn.template operator()<FastMath or LibmMath>().
template <class F>
decltype(auto) dispatch_math(F&& fn) {
  if (math_kernel() == MathKernel::Libm) return fn.template operator()<LibmMath>();
  return fn.template operator()<FastMath>();
}

// ---- the unary ops' loops: y = f(x), and dx = dy * f'(x) given x and/or y = f(x) ------------
enum class UnaryOp { Exp, Log, Sqrt, Tanh, Sigmoid, Relu, Gelu, GeluTanh, Square, Pow, Abs };
// Whether the backward reads the output y (else the input x).
constexpr bool unary_backward_uses_output(UnaryOp op) {
  return op == UnaryOp::Exp || op == UnaryOp::Sqrt || op == UnaryOp::Tanh ||
         op == UnaryOp::Sigmoid || op == UnaryOp::Relu;
}
// `p` is the exponent of Pow (ignored otherwise). `xy` is x or y per unary_backward_uses_output.
template <class T>
void unary_forward(UnaryOp op, T* y, const T* x, int64_t n, double p);
template <class T>
void unary_backward(UnaryOp op, T* dx, const T* dy, const T* xy, int64_t n, double p);
// GELU (erf form) for a training forward: y = x Phi(x) and its derivative d = Phi(x) + x phi(x),
// from one evaluation of Phi and exp. The backward is then dx = dy * d (no second erfc and exp):
// y is unary_forward(Gelu)'s, and dy * d is unary_backward(Gelu)'s bit for bit on the F32 vector
// loops (within a few ulps on the scalar ones, where multiply-adds may fuse differently).
template <class T>
void gelu_forward_derivative(T* y, T* d, const T* x, int64_t n);

}  // namespace focus
