// Row dot products: C (M, N) = alpha * A (M, K) @ B (N, K)^T + beta * C with the rows of A and B
// contiguous; the matrix-vector form of a Linear on few rows (decoding one token at a time).
// It reads B once, without the packing a BLAS GEMM does on every call, and threads over the rows
// of B when the product is large. F32 has an AVX-512 kernel (chosen by active_isa(), so
// FOCUS_FORCE_ISA lowers it); F64 and other ISAs run the portable loop (also exported for tests).
// gemm_small (gemm.hpp) routes A @ B^T here.
#pragma once
#include <cstdint>

#include "focus/tensor/bf16.hpp"

namespace focus {

template <class T>
void gemm_row_dots(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                   int64_t ldb, T beta, T* C, int64_t ldc);
// The portable loop (also the fallback), for tests.
template <class T>
void gemm_row_dots_portable(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                            const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// The same with B in bfloat16 (inference weights kept at half the bytes: decoding streams every
// weight once per token, so its speed is the memory's): each B element is widened to float and
// the sums run in float, so the result equals the F32 kernel's on B rounded to bf16 up to the
// summation order. One AVX2 kernel (also taken on AVX-512 CPUs; FOCUS_FORCE_ISA=scalar gives the
// portable loop).
void gemm_row_dots_bf16(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                        const BFloat16* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_row_dots_bf16_portable(int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                                 int64_t lda, const BFloat16* B, int64_t ldb, float beta, float* C,
                                 int64_t ldc);

}  // namespace focus
