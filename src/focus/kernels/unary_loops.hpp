// Internal to kernels/unary.cpp and its tests: the F32 GELU and ReLU loops compiled per ISA from
// unary_simd.hpp (unary_avx512.cpp, unary_avx2.cpp). Each loop runs on the calling thread over
// [0, n); unary.cpp splits large arrays over the threads. Same results as the scalar loops of
// unary.cpp up to a few ulps for GELU (the same algorithm, vectorised), exactly for ReLU.
#pragma once
#include <cstdint>

#include "focus/kernels/cpu.hpp"

namespace focus::simd {

struct UnaryLoops {
  void (*gelu_forward)(float* y, const float* x, int64_t n);                    // y = x Phi(x)
  void (*gelu_backward)(float* dx, const float* dy, const float* x, int64_t n);  // from x
  void (*relu_forward)(float* y, const float* x, int64_t n);
  void (*relu_backward)(float* dx, const float* dy, const float* y, int64_t n);  // from y
  // y = x Phi(x), d = Phi(x) + x phi(x): gelu_backward's factor, so dy * d is its result
  void (*gelu_forward_derivative)(float* y, float* d, const float* x, int64_t n);
};

UnaryLoops unary_loops_avx512();
UnaryLoops unary_loops_avx2();

// The loops for isa (null for Isa::Scalar); isa must not exceed what the CPU has.
inline const UnaryLoops* unary_loops(Isa isa) {
  static const UnaryLoops avx512 = unary_loops_avx512(), avx2 = unary_loops_avx2();
  return isa == Isa::Avx512 ? &avx512 : isa == Isa::Avx2 ? &avx2 : nullptr;
}

}  // namespace focus::simd
