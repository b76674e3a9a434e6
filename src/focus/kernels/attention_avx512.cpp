// The fused attention's AVX-512 path: attention_impl.hpp compiled for AVX-512 (16 floats a vector).
// Called only when active_isa() has AVX-512 (attention.cpp).
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
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
#include "focus/kernels/attention_impl.hpp"

namespace focus::attn {
TaskSet<float> tasks_avx512() { return Kern<float, 16>::task_set(); }
}  // namespace focus::attn
#pragma GCC pop_options
