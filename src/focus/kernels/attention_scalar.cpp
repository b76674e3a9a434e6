// The fused attention's scalar path (any CPU; the F64 kernels used by the gradient checks).
#include "focus/kernels/attention_impl.hpp"

namespace focus::attn {
template <class T>
TaskSet<T> tasks_scalar() {
  return Kern<T, 1>::task_set();
}
template TaskSet<float> tasks_scalar<float>();
template TaskSet<double> tasks_scalar<double>();
}  // namespace focus::attn
