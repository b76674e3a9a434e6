// The F32 GELU and ReLU loops on W lanes (unary_loops.hpp), written once over simd.hpp's vectors
// and compiled per ISA by unary_avx512.cpp and unary_avx2.cpp (after their target pragma; an
// anonymous namespace keeps each copy private). GELU uses normal_cdf<float>'s algorithm
// (unary.hpp): exp(-x^2/2), split exactly, times our erfc fit in t = 1/(1 + |x|/(2 sqrt 2)).
// The last partial vector goes through a zero-padded stack copy, so every element sees the same
// arithmetic.
#pragma once
#include <algorithm>
#include <cstdint>

#include "focus/kernels/simd.hpp"
#include "focus/kernels/unary.hpp"
#include "focus/kernels/unary_loops.hpp"

namespace focus::simd {
namespace {

template <int W>
struct UnaryKern {
  using S = Simd<float, W>;
  using V = typename S::V;
  using VI = typename S::VI;

  // Phi(x) and gauss = exp(-x^2/2), as normal_cdf<float>.
  static V cdf(V x, V& gauss) {
    const V zero = V{}, one = S::bcast(1.0f), half = S::bcast(0.5f);
    const V a = (x < zero ? -x : x) * 0.70710678f;
    const V t = one / (half * a + one);
    V r = S::bcast(kErfcxPoly[9]);
    for (int i = 8; i >= 0; --i) r = r * t + kErfcxPoly[i];
    const V x2 = x * x, u = half * x2;
    const V du = u < S::bcast(100.0f) ? half * S::fms(x, x, x2) : zero;  // no inf - inf
    const V e = S::vexp(-u);
    gauss = e - e * du;
    const V half_erfc = half * gauss * r;
    return x < zero ? half_erfc : one - half_erfc;
  }

  // out = Op::apply(inputs) on full vectors, then the tail through a padded copy of every input.
  // (Op is a struct, not a lambda: GCC does not give a lambda the target of the pragma around
  // it.)
  template <class Op, int NIn>
  static void blocks(int64_t n, float* out, const float* const (&in)[NIn]) {
    int64_t i = 0;
    V v[NIn];
    for (; i + W <= n; i += W) {
      for (int k = 0; k < NIn; ++k) v[k] = S::load(in[k] + i);
      S::store(out + i, Op::apply(v));
    }
    if (i < n) {
      float buf[NIn][W] = {}, res[W];
      for (int k = 0; k < NIn; ++k) std::copy(in[k] + i, in[k] + n, buf[k]);
      for (int k = 0; k < NIn; ++k) v[k] = S::load(buf[k]);
      S::store(res, Op::apply(v));
      std::copy(res, res + (n - i), out + i);
    }
  }

  struct GeluForward {  // y = x Phi(x)
    static V apply(const V* v) {
      V gauss;
      return v[0] * cdf(v[0], gauss);
    }
  };
  // Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi): GELU's derivative, given Phi and gauss.
  static V derivative(V x, V c, V gauss) { return x * 0.3989422804014327f * gauss + c; }
  struct GeluBackward {  // dx = dy (Phi(x) + x phi(x))
    static V apply(const V* v) {
      V gauss;
      const V c = cdf(v[1], gauss);
      return v[0] * derivative(v[1], c, gauss);
    }
  };
  struct ReluForward {  // y = x < 0 ? 0 : x (NaN and -0 pass through, as in the scalar loop)
    static V apply(const V* v) { return v[0] < V{} ? V{} : v[0]; }
  };
  struct ReluBackward {  // dx = y > 0 ? dy : 0
    static V apply(const V* v) { return v[1] > V{} ? v[0] : V{}; }
  };

  static void gelu_forward(float* y, const float* x, int64_t n) {
    const float* const in[1] = {x};
    blocks<GeluForward>(n, y, in);
  }
  static void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) {
    const float* const in[2] = {dy, x};
    blocks<GeluBackward>(n, dx, in);
  }
  // y = x Phi(x) and d = derivative(x): two outputs, so its own loop (same padded tail; a static
  // function, not a lambda, for the reason above).
  static void gelu_fd(V v, float* yo, float* dout) {
    V gauss;
    const V c = cdf(v, gauss);
    S::store(yo, v * c);
    S::store(dout, derivative(v, c, gauss));
  }
  static void gelu_forward_derivative(float* y, float* d, const float* x, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) gelu_fd(S::load(x + i), y + i, d + i);
    if (i < n) {
      float bx[W] = {}, by[W], bd[W];
      std::copy(x + i, x + n, bx);
      gelu_fd(S::load(bx), by, bd);
      std::copy(by, by + (n - i), y + i);
      std::copy(bd, bd + (n - i), d + i);
    }
  }
  static void relu_forward(float* y, const float* x, int64_t n) {
    const float* const in[1] = {x};
    blocks<ReluForward>(n, y, in);
  }
  static void relu_backward(float* dx, const float* dy, const float* y, int64_t n) {
    const float* const in[2] = {dy, y};
    blocks<ReluBackward>(n, dx, in);
  }

  static UnaryLoops loops() {
    return {&gelu_forward, &gelu_backward, &relu_forward, &relu_backward, &gelu_forward_derivative};
  }
};

}  // namespace
}  // namespace focus::simd
