// Reductions over the middle axis of a contiguous (O, R, I) array (ops/reduce.cpp brings any
// dims to that layout): O outer rows, R reduced, I inner. Outputs are (O, I). Sums and
// variances accumulate in double for F32 and F64; the variance is two-pass (mean first).
// Large work runs in parallel over O (or over I when O is small, or inside R when O = I = 1).
#pragma once
#include <cstdint>

namespace focus {

// y = scale * sum_r x; backward: dx[o, r, i] = scale * dy[o, i].
template <class T>
void sum_forward(T* y, const T* x, int64_t O, int64_t R, int64_t I, double scale);
template <class T>
void sum_backward(T* dx, const T* dy, int64_t O, int64_t R, int64_t I, double scale);

// y = sum_r (x - mean)^2 / (R - ddof); backward: dx = dy * 2 (x - mean) / (R - ddof).
template <class T>
void var_forward(T* y, const T* x, int64_t O, int64_t R, int64_t I, int64_t ddof);
template <class T>
void var_backward(T* dx, const T* dy, const T* x, int64_t O, int64_t R, int64_t I, int64_t ddof);

// y = max_r x and idx = the first r reaching it (a NaN counts as the maximum, as in torch);
// backward: dx zero except dx[o, idx[o, i], i] = dy[o, i]. R >= 1.
template <class T>
void max_forward(T* y, int64_t* idx, const T* x, int64_t O, int64_t R, int64_t I);
template <class T>
void max_backward(T* dx, const T* dy, const int64_t* idx, int64_t O, int64_t R, int64_t I);

}  // namespace focus
