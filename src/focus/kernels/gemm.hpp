// GEMM for F32 and F64, row-major: C = alpha * op(A) @ op(B) + beta * C, op = optional transpose.
// Kernels:
//   - blas:    OpenBLAS, loaded with dlopen on first use after choosing its core for this CPU
//              (OPENBLAS_CORETYPE=SkylakeX / Haswell unless the user set it): Debian's 0.3.21
//              mis-detects AVX-512 Xeons and would otherwise run its slow generic kernels.
//   - small:   a direct register-blocked kernel for tiny products where a BLAS call costs more
//              than the arithmetic (batch-1 inference, attention tiles), and for x @ W^T with
//              at most 16 rows of x at any size (row dot products, threaded when large: decoding
//              one token through a Linear, where the BLAS would pack all of W every call).
//   - onednn:  oneDNN's dnnl_sgemm (F32 only; JIT kernels for the CPU, capped like every oneDNN
//              call by kernels/onednn.hpp): 1.1-1.8x OpenBLAS on the skinny products of the
//              models here on AVX-512 (docs/BENCHMARKS.md, "GEMM: oneDNN's sgemm").
//   - reference: the naive triple loop, the oracle for tests.
// gemm() picks small by size, else onednn for F32 where oneDNN runs (not under
// FOCUS_FORCE_ISA=scalar) and wins (every product on AVX-512; with AVX2 only, products whose
// smaller of N and K is at most 128), and blas otherwise; FOCUS_GEMM=reference|small|blas|onednn (or
// set_gemm_kernel) forces one (onednn falls back to blas for F64). If OpenBLAS cannot be loaded,
// gemm() says so once on stderr and uses `small` where it would have used blas.
// At bf16 precision (kernels/precision.hpp) an F32 gemm() runs oneDNN's bf16 matmul
// (gemm_bf16_onednn, kernels/gemm_bf16.cpp) where the CPU has bf16 units, the switch is auto or
// onednn and the product is above the small kernel's size (inside a parallel region, on one
// thread); otherwise it rounds the inputs to bf16 and runs the F32 kernel the switch picks (the emulation).
#pragma once
#include <cstdint>
#include <string>

#include "focus/kernels/cpu.hpp"

namespace focus {

enum class GemmKernel { Auto, Blas, Small, Reference, OneDnn };
void set_gemm_kernel(GemmKernel k);  // Auto restores size-based choice
GemmKernel gemm_kernel();
std::string gemm_backend_info();     // e.g. "OpenBLAS 0.3.21 (core SkylakeX, 2 threads)", and the bf16 precision when set
void blas_set_num_threads(int n);
bool blas_available();
// The OpenBLAS core loaded for each ISA level: SkylakeX (AVX-512), Haswell (AVX2 + FMA), Nehalem
// (SSE4.2: what a CPU with neither runs). It follows active_isa(), FOCUS_FORCE_ISA included.
const char* blas_core_for(Isa isa);

// (M, K) or (K, M) if transa; (K, N) or (N, K) if transb; C (M, N). Leading dims in elements.
void gemm(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool transa, bool transb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// A Linear over rows, as the inference plans run it: y (R, O) = x (R, I) W^T + b (W (O, I), b (O) or
// null), or y += that when accumulate.
void linear_rows(const float* x, int64_t R, int64_t I, const float* w, const float* b, int64_t O,
                 float* y, bool accumulate);

// The kernels themselves, same signature, for tests and benchmarks.
template <class T>
void gemm_reference(bool transa, bool transb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                    int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
template <class T>
void gemm_small(bool transa, bool transb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
void gemm_onednn(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc);
// op(A), op(B) converted to bf16, F32 accumulation and output; false, having written nothing,
// where oneDNN has no bf16 kernel for the product (or only its reference loop) or does not run.
bool gemm_bf16_onednn(bool transa, bool transb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc);
template <class T>
void gemm_blas(bool transa, bool transb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Measured peak: GFLOP/s of a pure FMA loop on `threads` threads (0 = policy) for ~`seconds`.
double measure_fma_peak_gflops(int threads = 0, double seconds = 0.3);

}  // namespace focus
