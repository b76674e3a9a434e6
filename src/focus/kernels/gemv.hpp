// Row dot products: C (M, N) = alpha * A (M, K) @ B (N, K)^T + beta * C with the rows of A and B
// contiguous; the matrix-vector form of a Linear on few rows (decoding one token at a time).
// It reads B once, without the packing a BLAS GEMM does on every call, and threads over the rows
// of B when the product is large. F32 has an AVX-512 kernel (chosen by active_isa(), so
// FOCUS_FORCE_ISA lowers it); F64 and other ISAs run the portable loop (also exported for tests).
// gemm_small (gemm.hpp) routes A @ B^T here. Inference weights packed once (kernels/panel_gemm.hpp)
// are faster still for 2 or more rows: each weight loaded there serves 6 rows of A.
#pragma once
#include <cstdint>

namespace focus {

template <class T>
void gemm_row_dots(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                   int64_t ldb, T beta, T* C, int64_t ldc);
// The portable loop (also the fallback), for tests.
template <class T>
void gemm_row_dots_portable(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                            const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace focus
