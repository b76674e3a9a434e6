// GEMM dispatch, the OpenBLAS loader, the small direct kernel and the reference (see gemm.hpp).
#include "focus/kernels/gemm.hpp"

#include <dlfcn.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include <oneapi/dnnl/dnnl.h>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemv.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/kernels/precision.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// CBLAS enums (values from the CBLAS standard).
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
using sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                          float, float*, int);
using dgemm_fn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*,
                          int, double, double*, int);
using setthreads_fn = void (*)(int);
using getstr_fn = char* (*)();

struct Blas {
  sgemm_fn sgemm = nullptr;
  dgemm_fn dgemm = nullptr;
  setthreads_fn set_threads = nullptr;
  getstr_fn config = nullptr, corename = nullptr;
  std::string error;
};

Blas load_blas() {
  Blas b;
  // OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads: set it first. focus picks the
  // core from the active ISA (FOCUS_FORCE_ISA included, so a forced avx2 run multiplies as an
  // AVX2 machine does) and overrides an inherited OPENBLAS_CORETYPE (machines here export
  // Haswell, 40% slower than SkylakeX on AVX-512); FOCUS_BLAS_CORETYPE forces any core.
  if (const char* forced = std::getenv("FOCUS_BLAS_CORETYPE"))
    setenv("OPENBLAS_CORETYPE", forced, 1);
  else
    setenv("OPENBLAS_CORETYPE", blas_core_for(active_isa()), 1);
  void* h = nullptr;
  const char* override_path = std::getenv("FOCUS_BLAS_LIBRARY");
  for (const char* name : {override_path, "libopenblas.so.0", "libopenblas.so",
                           "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"}) {
    if (!name) continue;
    h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (h) break;
  }
  if (!h) {
    b.error = "OpenBLAS not found (apt-get install libopenblas0-openmp)";
    return b;
  }
  b.sgemm = reinterpret_cast<sgemm_fn>(dlsym(h, "cblas_sgemm"));
  b.dgemm = reinterpret_cast<dgemm_fn>(dlsym(h, "cblas_dgemm"));
  b.set_threads = reinterpret_cast<setthreads_fn>(dlsym(h, "openblas_set_num_threads"));
  b.config = reinterpret_cast<getstr_fn>(dlsym(h, "openblas_get_config"));
  b.corename = reinterpret_cast<getstr_fn>(dlsym(h, "openblas_get_corename"));
  if (!b.sgemm || !b.dgemm) {
    b.sgemm = nullptr;
    b.dgemm = nullptr;
    b.error = "the BLAS library has no cblas_sgemm/cblas_dgemm";
  }
  return b;
}

std::atomic<bool> g_blas_loaded{false};

Blas& blas() {
  static Blas b = [] {
    Blas x = load_blas();
    if (!x.error.empty()) std::fprintf(stderr, "focus: %s; using the built-in GEMM\n", x.error.c_str());
    if (x.set_threads) x.set_threads(num_threads());
    g_blas_loaded = true;
    return x;
  }();
  return b;
}

GemmKernel initial_kernel() {
  const char* e = std::getenv("FOCUS_GEMM");
  if (!e) return GemmKernel::Auto;
  if (!std::strcmp(e, "reference")) return GemmKernel::Reference;
  if (!std::strcmp(e, "small")) return GemmKernel::Small;
  if (!std::strcmp(e, "blas")) return GemmKernel::Blas;
  if (!std::strcmp(e, "onednn")) return GemmKernel::OneDnn;
  return GemmKernel::Auto;
}
std::atomic<GemmKernel> g_kernel{initial_kernel()};

template <class T>
void check_args(const char* what, int64_t M, int64_t N, int64_t K, bool ta, bool tb, int64_t lda,
                int64_t ldb, int64_t ldc) {
  FOCUS_CHECK(M >= 0 && N >= 0 && K >= 0, ValueError, "{}: negative size M={} N={} K={}", what, M,
              N, K);
  const int64_t min_lda = std::max<int64_t>(1, ta ? M : K), min_ldb = std::max<int64_t>(1, tb ? K : N);
  FOCUS_CHECK(lda >= min_lda && ldb >= min_ldb && ldc >= std::max<int64_t>(1, N), ValueError,
              "{}: leading dims lda={} ldb={} ldc={} too small for M={} N={} K={}", what, lda, ldb,
              ldc, M, N, K);
}

// Products at or below this many multiply-adds go to the small kernel.
constexpr int64_t kSmallWork = 48 * 48 * 48;
// So do matrix-vector-like products x (M, K) @ W (N, K)^T with M at most this (a Linear on a few
// rows: batch-1 decoding), whatever their size: the BLAS would pack all of W on every call.
constexpr int64_t kGemvRows = 16;

// Where oneDNN's sgemm is the faster F32 kernel (quiet A/B, docs/BENCHMARKS.md "GEMM: oneDNN's
// sgemm"): every product on AVX-512 (g2p training 1.06x, vit training 1.35x, the compiled vit
// 1.43x at batch 256); with AVX2 only the skinny ones, whose smaller of N and K is at most 128
// (vit: 1.25x), while OpenBLAS's Haswell kernels stay 5% ahead on g2p's 256- and 1024-wide products.
bool onednn_wins(int64_t N, int64_t K) {
  if (!onednn_enabled()) return false;
  return active_isa() == Isa::Avx512 || std::min(N, K) <= 128;
}

template <class T>
void gemm_dispatch(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  GemmKernel k = g_kernel.load();
  constexpr bool f32 = std::is_same_v<T, float>;
  if (k == GemmKernel::Auto)
    k = M * N * K <= kSmallWork || (tb && !ta && M <= kGemvRows) ? GemmKernel::Small
        : f32 && onednn_wins(N, K)                                ? GemmKernel::OneDnn
                                                                  : GemmKernel::Blas;
  if (k == GemmKernel::OneDnn && !f32) k = GemmKernel::Blas;
  if (k == GemmKernel::Blas && !blas_available()) k = GemmKernel::Small;
  switch (k) {
    case GemmKernel::Reference: return gemm_reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    case GemmKernel::Small: return gemm_small(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    case GemmKernel::OneDnn:
      if constexpr (f32) return gemm_onednn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      [[fallthrough]];
    default: return gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

// bf16 precision (kernels/precision.hpp): oneDNN's bf16 matmul where it runs on bf16 hardware,
// else the emulation: the inputs rounded to bf16 (compact per-thread copies), then the F32 kernels.
// Small products are emulated too: a primitive call costs more than their arithmetic. A call
// inside a parallel region (data-parallel training's per-thread steps, the convolutions' image
// groups) gets a primitive made for one thread.
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const GemmKernel k = g_kernel.load();
  if ((k == GemmKernel::Auto || k == GemmKernel::OneDnn) && M * N * K > kSmallWork && bf16_hardware()) {
    const ScopedThreads threads(omp_in_parallel() ? 1 : num_threads());
    if (gemm_bf16_onednn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  }
  thread_local std::vector<float> ra, rb;
  const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  ra.resize(static_cast<size_t>(ar * ac));
  rb.resize(static_cast<size_t>(br * bc));
  for (int64_t r = 0; r < ar; ++r) round_to_bf16(ra.data() + r * ac, A + r * lda, ac);
  for (int64_t r = 0; r < br; ++r) round_to_bf16(rb.data() + r * bc, B + r * ldb, bc);
  gemm_dispatch<float>(ta, tb, M, N, K, alpha, ra.data(), std::max<int64_t>(1, ac), rb.data(),
                       std::max<int64_t>(1, bc), beta, C, ldc);
}

}  // namespace

void set_gemm_kernel(GemmKernel k) { g_kernel = k; }
GemmKernel gemm_kernel() { return g_kernel.load(); }
bool blas_available() { return blas().sgemm != nullptr; }

const char* blas_core_for(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "SkylakeX";
    case Isa::Avx2: return "Haswell";
    default: return "Nehalem";
  }
}

void blas_set_num_threads(int n) {
  // A BLAS not loaded yet reads the policy when it loads (in blas()).
  if (g_blas_loaded.load() && blas().set_threads) blas().set_threads(n);
}

std::string gemm_backend_info() {
  Blas& b = blas();
  if (!b.sgemm) return "built-in small kernel (" + b.error + ")";
  std::string s = "OpenBLAS";
  if (b.config) s += std::string(" [") + b.config() + "]";
  if (b.corename) s += std::string(" core ") + b.corename();
  s += ", " + std::to_string(num_threads()) + " threads";
  if (compute_precision() == Precision::Bf16)
    s += bf16_hardware() ? ", bf16 precision (oneDNN bf16)" : ", bf16 precision (emulated)";
  return s;
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args<float>("gemm", M, N, K, ta, tb, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  if (compute_precision() == Precision::Bf16)
    return gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_dispatch<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  check_args<double>("gemm", M, N, K, ta, tb, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  gemm_dispatch<double>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void linear_rows(const float* x, int64_t R, int64_t I, const float* w, const float* b, int64_t O,
                 float* y, bool accumulate) {
  gemm(false, true, R, O, I, 1.f, x, I, w, I, accumulate ? 1.f : 0.f, y, O);
  if (b)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t o = 0; o < O; ++o) y[r * O + o] += b[o];
}

template <class T>
void gemm_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                    int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T a = ta ? A[k * lda + i] : A[i * lda + k];
        const T b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += static_cast<double>(a) * static_cast<double>(b);
      }
      T& c = C[i * ldc + j];
      c = static_cast<T>(alpha * acc + (beta == T(0) ? T(0) : beta * c));
    }
}

template <class T>
void gemm_small(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  // A (M, K) and B (N, K) both row-major: dot products, no packing (kernels/gemv.hpp).
  if (tb && !ta) return gemm_row_dots<T>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // Pack op(B) as a (K, N) row-major panel when it is transposed so the inner loop is a
  // contiguous axpy over N; then C(i,:) = beta*C(i,:) + alpha * sum_k A(i,k) B(k,:).
  std::vector<T> packed;
  const T* Bp = B;
  int64_t ldbp = ldb;
  if (tb) {
    packed.resize(static_cast<size_t>(K * N));
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) packed[k * N + j] = B[j * ldb + k];
    Bp = packed.data();
    ldbp = N;
  }
  std::vector<T> row(static_cast<size_t>(N));
  for (int64_t i = 0; i < M; ++i) {
    T* r = row.data();
    for (int64_t j = 0; j < N; ++j) r[j] = T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T a = ta ? A[k * lda + i] : A[i * lda + k];
      const T* b = Bp + k * ldbp;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) r[j] += a * b[j];
    }
    T* c = C + i * ldc;
    if (beta == T(0)) {
      for (int64_t j = 0; j < N; ++j) c[j] = alpha * r[j];
    } else {
      for (int64_t j = 0; j < N; ++j) c[j] = alpha * r[j] + beta * c[j];
    }
  }
}

void gemm_onednn(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  onednn_init();
  // Row-major like the rest of focus; oneDNN threads over OpenMP with this thread's count
  // (ScopedThreads), as OpenBLAS does.
  const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                      ldb, beta, C, ldc);
  FOCUS_CHECK(st == dnnl_success, StateError, "gemm_onednn: dnnl_sgemm failed (status {}) for "
              "M={} N={} K={}", int(st), M, N, K);
}

template <>
void gemm_blas<float>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc) {
  Blas& b = blas();
  FOCUS_CHECK(b.sgemm, StateError, "gemm_blas: {}", b.error);
  b.sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, int(M), int(N), int(K), alpha,
          A, int(lda), B, int(ldb), beta, C, int(ldc));
}
template <>
void gemm_blas<double>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                       const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                       double* C, int64_t ldc) {
  Blas& b = blas();
  FOCUS_CHECK(b.dgemm, StateError, "gemm_blas: {}", b.error);
  b.dgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, int(M), int(N), int(K), alpha,
          A, int(lda), B, int(ldb), beta, C, int(ldc));
}

template void gemm_reference<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                    int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_reference<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                     int64_t, const double*, int64_t, double, double*, int64_t);
template void gemm_small<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_small<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                 int64_t, const double*, int64_t, double, double*, int64_t);

// ---- FMA peak --------------------------------------------------------------------------------

namespace {
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(0.f);
  const __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  alignas(64) float tmp[16];
  float s = 0;
  for (int i = 0; i < 16; ++i) {
    _mm512_store_ps(tmp, acc[i]);
    for (float v : tmp) s += v;
  }
  volatile float sink = s;
  (void)sink;
  return static_cast<double>(iters) * 16 * 16 * 2;
}
__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.f);
  const __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  alignas(32) float tmp[8];
  float s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_store_ps(tmp, acc[i]);
    for (float v : tmp) s += v;
  }
  volatile float sink = s;
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;
}
}  // namespace

double measure_fma_peak_gflops(int threads, double seconds) {
  if (threads <= 0) threads = num_threads();
  const Isa isa = detect_isa();
  auto loop = [&](int64_t iters) {
    return isa == Isa::Avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
  };
  loop(100000);  // warm up clocks
  int64_t iters = 1 << 20;
  double best = 0;
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    double flops = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += loop(iters);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops / dt / 1e9);
  } while (std::chrono::steady_clock::now() < t_end);
  return best;
}

}  // namespace focus
