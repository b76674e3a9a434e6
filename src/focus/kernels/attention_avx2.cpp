// The fused attention's AVX2 path: attention_impl.hpp compiled for AVX2 + FMA (8 floats a vector).
// Called only when active_isa() has AVX2 (attention.cpp).
// Every header is included before the target pragma, so its inline and template code keeps the
// baseline target; only the kernels defined in attention_impl.hpp get the wider one.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "focus/kernels/attention_tasks.hpp"
#include "focus/kernels/dropout.hpp"
#include "focus/kernels/unary.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "focus/kernels/attention_impl.hpp"

namespace focus::attn {
TaskSet<float> tasks_avx2() { return Kern<float, 8>::task_set(); }
}  // namespace focus::attn
#pragma GCC pop_options
