// The compiled cnn_se plan's host loops on oneDNN's nChw16c layout (infer/image_plan.cpp, the
// blocked layout, PlanLayout::Blocked): what runs between its Winograd convolutions without
// leaving their layout. A map x (N, C, H, W) in nChw16c is x[n][c / 16][h][w][c % 16]: channels
// in blocks of 16, the last block padded to 16 (the padding is read, never written or used).
//   se_gates_blocked16: the squeeze-and-excitation gates from the map (mean over the plane, two
//     small fully connected layers), one step where the NHWC plan runs a mean and two oneDNN
//     inner products (each call of those costs about as much as its arithmetic at batch 1).
//   pool_gate_blocked16: 2x2 max-pool (stride 2, floor) and the gates in one pass (max-pooling
//     commutes with a positive per-channel scale: the plan's order, see image_plan.hpp).
//   plane_mean_blocked16 / head_blocked16: the features (mean over the plane) and the logits.
// Letters: N images, C channels, H x W the plane (HW = H * W), Cr the SE bottleneck, K classes.
// The arithmetic is F32 throughout, in the models' order up to summation order; tested against
// the same maths on NCHW in tests/infer/image_plan_blocked_test.cpp. Parallel over images (OpenMP)
// where a call has enough work.
#pragma once
#include <cstdint>
#include <vector>

namespace focus {

// o (N, C) = the mean over the plane of x (N, C, H, W) in nChw16c.
void plane_mean_blocked16(float* o, const float* x, int64_t N, int64_t C, int64_t HW);

// g (N, C) = sigmoid(w2 relu(w1 mean(x) + b1) + b2), x in nChw16c; the weights w1 (Cr, C) and
// w2 (C, Cr) given transposed: w1t (C, Cr), w2t (Cr, C) (see transposed()).
void se_gates_blocked16(float* g, const float* x, int64_t N, int64_t C, int64_t HW,
                        const float* w1t, const float* b1, int64_t Cr, const float* w2t, const float* b2);

// y (N, C, H / 2, W / 2) = g[n, c] x the max of each 2x2 window of x (N, C, H, W) (stride 2; an odd
// last row / column is dropped), both in nChw16c; g (N, C) > 0.
void pool_gate_blocked16(float* y, const float* x, const float* g, int64_t N, int64_t C, int64_t H,
                         int64_t W);

// y (N, K) = w mean(x) + b, x (N, C, H, W) in nChw16c, the weight w (K, C) given as wt (C, K).
void head_blocked16(float* y, const float* x, int64_t N, int64_t C, int64_t HW, const float* wt,
                    const float* b, int64_t K);

// w (R, C) row-major -> its transpose (C, R): the fully connected weights as the loops above take
// them (vectors along the outputs).
std::vector<float> transposed(const std::vector<float>& w, int64_t R, int64_t C);

}  // namespace focus
