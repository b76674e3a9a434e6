// The GELU and ReLU loops (unary_loops.hpp) compiled for AVX2 + FMA (8 floats a vector).
// Called only when active_isa() has it (unary.cpp). Every header is included before the target
// pragma, so its inline and template code keeps the baseline target; only the loops defined in
// unary_simd.hpp get the wider one.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "focus/kernels/unary.hpp"
#include "focus/kernels/unary_loops.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "focus/kernels/unary_simd.hpp"

namespace focus::simd {
UnaryLoops unary_loops_avx2() { return UnaryKern<8>::loops(); }
}  // namespace focus::simd
#pragma GCC pop_options
