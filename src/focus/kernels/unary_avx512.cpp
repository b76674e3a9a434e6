// The GELU and ReLU loops (unary_loops.hpp) compiled for AVX-512 (16 floats a vector).
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
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
#include "focus/kernels/unary_simd.hpp"

namespace focus::simd {
UnaryLoops unary_loops_avx512() { return UnaryKern<16>::loops(); }
}  // namespace focus::simd
#pragma GCC pop_options
