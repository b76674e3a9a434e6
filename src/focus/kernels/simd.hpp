// Width-generic vector helpers for the ISA-compiled kernels (attention_impl.hpp, unary_simd.hpp):
// Simd<T, W> over a GCC vector of W lanes of T (W = 16: AVX-512, 8: AVX2, 1: plain scalar T).
// Include it only after a `#pragma GCC target` (or with none, for the scalar path): everything is
// in an anonymous namespace, so each including file gets a private copy compiled for its ISA and
// the linker can never hand AVX-512 code to an AVX2 caller.
//   vexp: the same range reduction and polynomial as the scalar vexp (unary.hpp).
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "focus/kernels/unary.hpp"

namespace focus::simd {
namespace {

template <class T, int W>
struct VecOf {
  using type = T;
  using itype = int32_t;
};
template <>
struct VecOf<float, 16> {
  typedef float type __attribute__((vector_size(64)));
  typedef int32_t itype __attribute__((vector_size(64)));
};
template <>
struct VecOf<float, 8> {
  typedef float type __attribute__((vector_size(32)));
  typedef int32_t itype __attribute__((vector_size(32)));
};

template <class T, int W>
struct Simd {
  using V = typename VecOf<T, W>::type;
  using VI = typename VecOf<T, W>::itype;

  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
  static void store(T* p, V v) { std::memcpy(p, &v, sizeof(V)); }
  // A splat that becomes a broadcast from memory (a register splat would take the shuffle port
  // the FMAs need).
  static V bcast(T x) {
    if constexpr (W == 16) return (V)_mm512_set1_ps(x);
    else if constexpr (W == 8) return (V)_mm256_set1_ps(x);
    else return x;
  }
  static V vmax(V a, V b) { return a > b ? a : b; }
  // a * b - c with one rounding.
  static V fms(V a, V b, V c) {
    if constexpr (W == 16) return (V)_mm512_fmsub_ps((__m512)a, (__m512)b, (__m512)c);
    else if constexpr (W == 8) return (V)_mm256_fmsub_ps((__m256)a, (__m256)b, (__m256)c);
    else return std::fma(a, b, -c);
  }
  // Horizontal max / sum: halve the vector until one lane is left.
  template <class F>
  static T reduce(V v, F f) {
    if constexpr (W == 1) {
      return v;
    } else {
      auto v8 = [&] {
        if constexpr (W == 16)
          return f(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7),
                   __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
        else
          return v;
      }();
      const auto v4 = f(__builtin_shufflevector(v8, v8, 0, 1, 2, 3),
                        __builtin_shufflevector(v8, v8, 4, 5, 6, 7));
      const auto v2 = f(__builtin_shufflevector(v4, v4, 0, 1), __builtin_shufflevector(v4, v4, 2, 3));
      return f(v2[0], v2[1]);
    }
  }
  static T hmax(V v) {
    return reduce(v, [](auto a, auto b) { return a > b ? a : b; });
  }
  static T hsum(V v) {
    return reduce(v, [](auto a, auto b) { return a + b; });
  }
  // exp with exp(x) = 0 for x < -86.5 (so exp(-inf) = 0) and the largest float for x > 88.72;
  // NaN stays NaN.
  static V vexp(V x) {
    if constexpr (W == 1) {
      return focus::vexp<T>(x);
    } else {
      const V lo = bcast(T(-86.5)), hi = bcast(T(88.72283));
      V xc = x < lo ? lo : x;
      xc = xc > hi ? hi : xc;
      const V magic = bcast(T(12582912.0));
      const V n = (xc * T(1.4426950408889634) + magic) - magic;
      V r = xc - n * T(0.693145751953125);
      r = r - n * T(1.4286068203094172e-06);
      const V p = exp_reduced<T>(r);
      const VI e = (__builtin_convertvector(n, VI) + 126) << 23;
      const V res = p * (V)e * T(2);
      return x < lo ? V{} : res;
    }
  }
};

}  // namespace
}  // namespace focus::simd
