// Fused loss kernels on contiguous arrays, forward and backward side by side. Forwards return
// the loss summed in double (the op divides by the count); backwards take `scale`, the upstream
// gradient over that count.
//   cross_entropy, logits x (N, C), targets t (N) in [0, C) or == ignore (rows left out):
//     forward:  per row stats[n] = (m, ls): the max and log sum_c exp(x[n, c] - m), so that
//               lse = m + ls is never rounded as a whole (exact for logits far from 0); returns
//               sum over kept rows of (1 - eps) (lse - x[n, t]) + eps (lse - mean_c x[n, c])
//     backward: dx[n, c] = scale * (exp(x[n, c] - m - ls) - (1 - eps) [c == t] - eps / C),
//               0 on ignored rows
//   bce_with_logits, x and y (n): forward sum max(x, 0) - x y + log1p(exp(-|x|));
//     backward dx = scale * (sigmoid(x) - y), dy = -scale * x
//   mse, x and y (n): forward sum (x - y)^2; backward dx = 2 scale (x - y), dy = -dx
// dx / dy may be null (not computed). exp is vexp unless MathKernel::Libm (kernels/unary.hpp).
#pragma once
#include <cstdint>

namespace focus {

template <class T>
double cross_entropy_forward(T* stats, const T* x, const int64_t* t, int64_t N, int64_t C,
                             double eps, int64_t ignore);
template <class T>
void cross_entropy_backward(T* dx, const T* x, const T* stats, const int64_t* t, int64_t N, int64_t C,
                            double eps, int64_t ignore, double scale);

template <class T>
double bce_with_logits_forward(const T* x, const T* y, int64_t n);
template <class T>
void bce_with_logits_backward(T* dx, T* dy, const T* x, const T* y, int64_t n, double scale);

template <class T>
double mse_forward(const T* x, const T* y, int64_t n);
template <class T>
void mse_backward(T* dx, T* dy, const T* x, const T* y, int64_t n, double scale);

}  // namespace focus
