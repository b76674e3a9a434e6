// Fused normalisation kernels on contiguous arrays, forward and backward side by side.
//   layer_norm over rows (R, C):
//     forward:  mean[r], rstd[r] = 1 / sqrt(var[r] + eps) (population variance);
//               y = (x - mean) * rstd * w + b
//     backward: xhat = (x - mean) * rstd, g = dy * w;
//               dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat));
//               dw = sum_r dy * xhat, db = sum_r dy
//   batch_norm per channel of (N, C, S) (S: the product of the spatial dims, 1 for (N, C)):
//     stats:    mean[c], var[c] over (N, S), population variance
//     forward:  y = (x - mean) * rstd * w + b, with the batch or the running statistics
//     backward: with M = N * S, xhat and g as above, sums over (N, S);
//               training: dx = w * rstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M)
//               eval:     dx = w * rstd * dy (the statistics are constants)
//               dw = sum dy * xhat, db = sum dy
// w and b may be null (1 and 0); any of dx, dw, db may be null (not computed). layer_norm's row
// statistics accumulate in T (a row is short: the features of one token, two passes), its
// weight/bias gradients in T within blocks of 32 rows and in double across them; batch_norm
// accumulates in double. Parallel over rows (layer_norm) or channels.
#pragma once
#include <cstdint>

namespace focus {

template <class T>
void layer_norm_forward(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t R,
                        int64_t C, double eps);
// One row of layer_norm_forward, serial (no OpenMP region: for fused kernels calling it per row
// inside their own): y, x (C); w, b (C) not null; writes *mean and *rstd. The same values.
template <class T>
void layer_norm_row(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t C,
                    double eps);
template <class T>
void layer_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                         const T* w, int64_t R, int64_t C);

template <class T>
void batch_norm_stats(T* mean, T* var, const T* x, int64_t N, int64_t C, int64_t S);
template <class T>
void batch_norm_forward(T* y, const T* x, const T* mean, const T* rstd, const T* w, const T* b,
                        int64_t N, int64_t C, int64_t S);
template <class T>
void batch_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                         const T* w, int64_t N, int64_t C, int64_t S, bool training);

}  // namespace focus
