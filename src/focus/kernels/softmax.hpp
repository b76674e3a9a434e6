// Softmax and log-softmax along the middle axis of a contiguous (O, N, I) array: O outer, N the
// softmax axis, I inner. I == 1 is the hot case (attention scores, logits: contiguous rows).
// Max-subtracted, so any finite logits give finite results; a row holding NaN or +inf, or only
// -inf, gives NaN (as torch). exp is vexp unless MathKernel::Libm (kernels/unary.hpp).
// Backward reads the saved output y:
//   softmax:     dx = y * (dy - sum_n dy * y)
//   log_softmax: dx = dy - exp(y) * sum_n dy
#pragma once
#include <cstdint>

namespace focus {

template <class T>
void softmax_forward(T* y, const T* x, int64_t O, int64_t N, int64_t I, bool log);
template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t O, int64_t N, int64_t I, bool log);

}  // namespace focus
