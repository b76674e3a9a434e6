// Pointwise math for the kernels: a vectorisable exp and normal CDF (shared with the softmax,
// norm and loss kernels), and the raw forward/backward loops of the unary ops (ops/unary.cpp).
//   vexp(x): exp without a libm call, written so GCC vectorises the loops around it. Range
//     reduction x = n ln2 + r (|r| <= ln2/2, ln2 split in two for an exact n*ln2_hi), Taylor
//     polynomial of degree 7 (F32) / 13 (F64), times 2^n built in the exponent bits. About 1 ulp.
//     Results below the smallest normal flush to 0 (x < -86.5 F32, x < -708 F64); x past the
//     largest finite result gives +inf; NaN propagates.
//   normal_cdf(x) = P(N(0,1) <= x) (GELU): F32 works in double with two fits of ours (erf(z)/z in
//     z^2 for |z| < 2, z e^{z^2} erfc(z) in 1/z for |z| >= 2, z = x/sqrt2; relative error < 2e-9
//     before the final rounding to float); F64 calls std::erfc.
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
  T p;
  if constexpr (F) {
    p = T(1.0 / 5040);
    p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
    p = p * r + T(1.0 / 6);
    p = p * r + T(0.5);
  } else {
    p = T(1.0 / 6227020800);
    p = p * r + T(1.0 / 479001600);
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
  p = p * r + T(1);
  const T scale = std::bit_cast<T>(static_cast<I>((static_cast<I>(n) + bias) << mant));
  T res = p * scale * T(2);
  res = x < lo ? T(0) : res;
  res = x > hi ? std::numeric_limits<T>::infinity() : res;
  return x != x ? x : res;
}

// P(N(0,1) <= x), see the file comment.
template <class T>
inline T normal_cdf(T x) {
  if constexpr (std::is_same_v<T, double>) {
    return 0.5 * std::erfc(-x * 0.7071067811865476);
  } else {
    const double z = double(x) * 0.7071067811865476, az = z < 0 ? -z : z;
    const double u = z * z;
    double a = 2.5875639785010782e-9;  // erf(z) / z, polynomial in u = z^2 on [0, 4]
    a = a * u - 8.1245669148991366e-8;
    a = a * u + 1.2764469943218856e-6;
    a = a * u - 1.3817015739341561e-5;
    a = a * u + 0.00011833479179779159;
    a = a * u - 0.00085191721473283006;
    a = a * u + 0.005221554762807139;
    a = a * u - 0.026864984341003626;
    a = a * u + 0.11283761658062828;
    a = a * u - 0.37612635923291976;
    a = a * u + 1.1283791666036677;
    const double central = 0.5 + 0.5 * z * a;
    const double s = 1.0 / (az < 2.0 ? 2.0 : az);
    double b = 0.063046450660405762;  // z e^{z^2} erfc(z), polynomial in s = 1/z on [0, 1/2]
    b = b * s + 0.86999496887277765;
    b = b * s - 2.9074624137346981;
    b = b * s + 3.6713731851548021;
    b = b * s - 2.1176113089966724;
    b = b * s + 0.18444879861906714;
    b = b * s + 0.40353899129877996;
    b = b * s + 0.0012093644472690138;
    b = b * s - 0.2821331154487518;
    b = b * s + 4.7576177994321022e-7;
    b = b * s + 0.56418958256614295;
    const double half_erfc = 0.5 * vexp(-u) * b * s;  // 0.5 erfc(|z|)
    const double tail = z < 0 ? half_erfc : 1.0 - half_erfc;
    return static_cast<float>(az < 2.0 ? central : tail);
  }
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

}  // namespace focus
