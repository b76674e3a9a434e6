// The GEMM under the convolution kernels (kernels/conv.cpp): C (M, N) = op(A) @ op(B) + beta * C,
// row-major, alpha = 1. Single-threaded F32 with B untransposed on an AVX-512 CPU (the forward
// and the input gradient of each thread's group of images) runs our blocked kernel: per block of
// KC = 128 reduction steps, B is packed into panels of 48 columns (each KC x 48, in L1) and op(A)
// into panels of 8 rows, and an 8x48 register-tile micro-kernel (24 accumulators) sweeps them.
// Everything else calls gemm() (kernels/gemm.hpp): a call outside an OpenMP parallel region with
// several threads (OpenBLAS splits it), a transposed B (the weight gradient, whose packing
// OpenBLAS does faster), F64, other CPUs or a forced lower ISA (FOCUS_FORCE_ISA),
// FOCUS_GEMM=reference|small|blas|onednn or set_gemm_kernel, bf16 precision (gemm() rounds).
// bench/conv2d_bench.cpp compares it with OpenBLAS inside the convolution.
#pragma once
#include <cstdint>

namespace focus {

// (M, K) or (K, M) if transa; (K, N) or (N, K) if transb; C (M, N). beta 0: C is only written.
// The path an F32 conv_gemm with these arguments takes now (threads, ISA and GEMM switch as set).
enum class ConvGemmPath { Blocked, Gemm };
ConvGemmPath conv_gemm_path(bool transb, int64_t M, int64_t N, int64_t K);

template <class T>
void conv_gemm(bool transa, bool transb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace focus
