// int8 GEMM for inference: y (M, N) = dequant(q(x) (M, K) @ q(W) (N, K)^T) + bias, in F32.
// Quantisation (symmetric, no zero points anywhere in the maths):
//   - weights: per output channel n, scale_w[n] = max_k |W[n, k]| / 127, q = round(W / scale_w)
//     in [-127, 127]; packed once (pack_qweight) in the layout of the path that will run them.
//   - activations: dynamic, per row m, scale_x[m] = max_k |x[m, k]| / 127, q in [-127, 127].
//   - acc[m, n] = sum_k qx[m, k] * qw[n, k] in int32, exact on every path;
//     y[m, n] = acc * scale_x[m] * scale_w[n] + bias[n], then the epilogue (none, ReLU, GELU).
// Paths (one signature, qgemm_s32_<path>; qgemm_path() picks one, FOCUS_FORCE_ISA lowers it):
//   - Vnni512 (AVX512-VNNI vpdpbusd, u8 x s8 -> s32): the s8 activations are flipped to u8
//     (+128) as the kernel reads them and the shift is taken out again with the weights' column
//     sums (128 * sum_k qw[n, k]), so the result is the same integer. Weights in panels [N/16][K/4][16][4] bytes; register
//     tile 6 rows x 64 columns (24 accumulators).
//   - Avx2 (vpmaddwd on s16): activations and weights widened to int16, each pair of products
//     summed straight into an int32 lane (vpmaddubsw would sum u8 x s8 pairs into int16 and
//     saturate at 255 * 127 * 2 > 32767 unless the range were cut to 7 bits, as ONNX Runtime
//     does). Nothing saturates here, so the full range stays and the result is again exact; the
//     cost is half the products per instruction of vpmaddubsw. Weights in [N/8][K/2][8][2] int16;
//     tile 4 rows x 24 columns (12 accumulators). Also what an AVX-512 CPU without VNNI runs.
//   - Scalar: the plain triple loop over s8 values, the oracle.
// Integer sums cannot overflow for K <= 65,536 (the u8-shifted sums stay under 2^31 with
// 255 * 127 * K; checked at packing).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace focus {

enum class QPath { Scalar, Avx2, Vnni512 };
QPath qgemm_path();                 // the best path of active_isa() (and VNNI on AVX-512)
std::string qpath_name(QPath p);    // "scalar" | "avx2" | "avx512-vnni"
bool qpath_supported(QPath p);      // the CPU can run it (tests skip the others)

enum class QEpilogue { None, Relu, Gelu };  // GELU: the exact erf form, as ops/unary's gelu

struct QWeight {
  int64_t N = 0, K = 0;      // logical (OUT, IN)
  int64_t Kp = 0, Np = 0;    // padded for the path's layout
  QPath path = QPath::Scalar;
  std::vector<int8_t> q;     // (N, K) row-major: the quantised weight (the scalar path's operand)
  std::vector<float> scale;  // (N)
  std::vector<int32_t> colsum;  // (N) sum_k q[n, k]
  std::vector<int32_t> shift;   // Vnni512: (Np) 128 * colsum, zero-padded (the u8 shift's correction)
  std::shared_ptr<int8_t[]> panels;  // path layout (Vnni512: int8, Avx2: int16 bytes), 64-aligned
  size_t bytes() const;      // memory the packed copy holds
};

// Quantises and packs W (N, K) F32 row-major for `path` (default: qgemm_path()). ValueError for a
// non-finite weight, N or K < 1, or K > 65,536.
QWeight pack_qweight(const float* W, int64_t N, int64_t K);
QWeight pack_qweight(const float* W, int64_t N, int64_t K, QPath path);

// Per-row symmetric quantisation: q (M, K) row stride ldq, scale (M); a zero row gets scale 0.
// quantize_rows is the reference; the vector versions give the same integers and scales.
void quantize_rows(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx, int64_t M,
                   int64_t K);
void quantize_rows_avx2(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx,
                        int64_t M, int64_t K);
void quantize_rows_avx512(int8_t* q, int64_t ldq, float* scale, const float* x, int64_t ldx,
                          int64_t M, int64_t K);

// The quantiser of w.path (same integers as quantize_rows).
void quantize_rows_for(const QWeight& w, int8_t* q, int64_t ldq, float* scale, const float* x,
                       int64_t ldx, int64_t M);

// The same of each row's LayerNorm (weight, bias (w.K), eps): the rows of layer_norm_row
// quantised per row. The Vnni512 path normalises and quantises a row in registers in one pass
// (w.K a multiple of 16, at most 256; the same formula, its sums in another order); otherwise
// layer_norm_row into per-thread scratch, then quantize_rows_for (the reference).
void quantize_rows_layer_norm_for(const QWeight& w, int8_t* q, int64_t ldq, float* scale,
                                  const float* x, int64_t ldx, int64_t M, const float* weight,
                                  const float* bias, float eps);
// false when K is outside what it takes (K % 16 != 0 or K > 256).
bool quantize_rows_layer_norm_avx512(int8_t* q, int64_t ldq, float* scale, const float* x,
                                     int64_t ldx, int64_t M, int64_t K, const float* weight,
                                     const float* bias, float eps);

// acc (M, N) row stride ldc = qa (M, K) row stride lda @ w.q^T, exact. Each path reads w's panels
// for its own layout (w.path must match; the scalar one reads w.q).
void qgemm_s32_scalar(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
                      const QWeight& w);
void qgemm_s32_avx2(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
                    const QWeight& w);
void qgemm_s32_vnni512(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
                       const QWeight& w);
// w.path's kernel.
void qgemm_s32(int32_t* acc, int64_t ldc, const int8_t* qa, int64_t lda, int64_t M,
               const QWeight& w);

// The product dequantised: y (M, N) row stride ldy =, or += when accumulate, (qa @ w.q^T) *
// scale_x[m] * w.scale[n] + bias[n] (bias null: none); the numbers of qgemm_s32 followed by
// qdequantize_rows. The Vnni512 path dequantises in its tiles' store (no int32 pass through
// memory); the others run exactly that composition on per-thread scratch.
void qgemm_dequant(float* y, int64_t ldy, const int8_t* qa, int64_t lda, int64_t M,
                   const QWeight& w, const float* scale_x, const float* bias, bool accumulate);
void qgemm_f32_vnni512(float* y, int64_t ldy, const int8_t* qa, int64_t lda, int64_t M,
                       const QWeight& w, const float* scale_x, const float* bias, bool accumulate);

// y (M, N) row stride ldy <- acc (M, N) row stride ldc * scale_x[m] * w.scale[n] + bias[n] (bias
// null: none): the dequantisation every int8 product ends with (qlinear_forward, kernels/qfused).
void qdequantize_rows(float* y, int64_t ldy, const int32_t* acc, int64_t ldc, const float* scale_x,
                      int64_t M, const QWeight& w, const float* bias);

// The whole product: y (M, N) row stride ldy <- x (M, K) row stride ldx, bias (N) or null.
// Rows in blocks; the blocks over the thread policy's threads when the product is large and the
// caller is not inside a parallel region.
void qlinear_forward(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t M,
                     const QWeight& w, const float* bias, QEpilogue ep = QEpilogue::None);

}  // namespace focus
