// Few-row products on a pre-packed weight: C (M, N) = alpha * A (M, K) @ W (N, K)^T + beta * C,
// the Linear of decoding (M = batch rows of one step, 1 to a few dozen).
//
// Layout ("panels"): W is packed once into ceil(N / 16) panels of 16 rows; panel p holds, for each
// k, W[16p + 0 .. 16p + 15][k] contiguously (element (p, k, r) at P[(p * K + k) * 16 + r]); rows
// past N are zero. A micro-kernel keeps a 6 x 16 block of C in 12 AVX2 accumulators, loads the
// panel's 16 weights of step k once (2 vectors) and multiplies them by 6 broadcast rows of A, so
// each weight loaded serves 6 rows, where the row-dot kernels (gemv.hpp) re-read the rows of A for
// every pair of weight rows. A panel (16 x K) stays in L1/L2 while the row blocks go by, so W is
// streamed once per call whatever M is.
//
// Weights in F32 or BF16 (widened in registers, the sums in float either way). AVX2 + FMA kernel
// (also on AVX-512 CPUs); the portable loop is the reference (same signature; FOCUS_FORCE_ISA=
// scalar selects it). Threads split the panels when the product is large.
#pragma once
#include <cstdint>

#include "focus/tensor/bf16.hpp"

namespace focus {

inline constexpr int64_t kPanelRows = 16;  // rows of W per panel
inline int64_t panel_count(int64_t N) { return (N + kPanelRows - 1) / kPanelRows; }

// Packs W (N, K) with row stride ldw into P (panel_count(N) * K * 16 elements).
template <class W>
void pack_panels(int64_t N, int64_t K, const float* Wsrc, int64_t ldw, W* P);

// W = float or BFloat16.
template <class W>
void gemm_panels(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const W* P, float beta, float* C, int64_t ldc);
template <class W>
void gemm_panels_reference(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                           int64_t lda, const W* P, float beta, float* C, int64_t ldc);

}  // namespace focus
