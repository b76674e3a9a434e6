// Raw NCHW convolution and pooling kernels on pointers (no autograd, no Tensor), F32 and F64.
//   conv2d kernels, one signature:
//     onednn:    oneDNN's convolution primitives (forward_training, backward_data,
//                backward_weights; kernels/conv_onednn.hpp), F32 only, blocked layouts with the
//                reorders from and to NCHW in each call, direct algorithm.
//     winograd:  the same with oneDNN's Winograd F(4x4, 3x3) for every pass where it has one
//                (3x3, stride 1, AVX-512), direct elsewhere.
//     im2col:    im2col + GEMM over groups of images: a group's im2col matrices sit side by side
//                (C*KH*KW rows, about 512 columns, at most 1 MiB per thread) so that small planes
//                still give wide GEMMs (kernels/conv_gemm); groups in parallel, each GEMM
//                single-threaded inside the OpenMP region; a single image (batch-1 inference)
//                gets the GEMM's threads.
//     reference: the direct 7-loop convolution in double, the test oracle.
//   conv2d_forward / conv2d_backward pick oneDNN for F32 where it wins (conv_onednn_wins below,
//   measured shape by shape: docs/BENCHMARKS.md "cnn_se training on oneDNN convolutions") and
//   oneDNN runs (not under FOCUS_FORCE_ISA=scalar), Winograd where oneDNN has it; im2col
//   otherwise.
//   FOCUS_CONV=reference|im2col|onednn|winograd (or set_conv_kernel) forces one (onednn and
//   winograd fall back to im2col for F64 and where oneDNN has no primitive for the geometry).
//   pooling: max (with argmax for the backward) and average (count_include_pad) over square
//           windows, planes in parallel.
// Limits: groups = 1, no dilation, square stride/padding; callers validate shapes (ops/conv.cpp).
// Backward kernels write (not accumulate) their outputs; any of dx/dw/db may be null.
#pragma once
#include <cstdint>

namespace focus {

// x (N, C, H, W), w (O, C, KH, KW), y (N, O, OH, OW).
struct ConvGeom {
  int64_t N, C, H, W, O, KH, KW, stride, padding;
  int64_t OH() const { return (H + 2 * padding - KH) / stride + 1; }
  int64_t OW() const { return (W + 2 * padding - KW) / stride + 1; }
};

enum class ConvKernel { Auto, Im2col, OneDnn, Winograd, Reference };
void set_conv_kernel(ConvKernel k);  // Auto restores the per-shape choice
ConvKernel conv_kernel();
// The automatic choice's rule: true where the oneDNN kernels beat im2col for g (F32).
bool conv_onednn_wins(const ConvGeom& g);
// The grouped lowering's target GEMM width: images are grouped until a group has about this many
// output positions (default 512; 1 = one image per GEMM). For benchmarks and tests.
void set_conv_group_columns(int64_t columns);
int64_t conv_group_columns();

// One image: col (C*KH*KW, OH*OW), rows `ld` elements apart (ld >= OH*OW, so that several images
// can sit side by side), <- x (C, H, W); zeros where the window hits the padding.
template <class T> void im2col(T* col, int64_t ld, const T* x, const ConvGeom& g);
// One image: dx (C, H, W) += col (C*KH*KW, OH*OW) folded back (the adjoint of im2col).
template <class T> void col2im(T* dx, const T* col, int64_t ld, const ConvGeom& g);

// y = conv(x, w) + b; b may be null. Dispatches to the im2col or the reference kernel.
template <class T> void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvGeom& g);
template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvGeom& g);

template <class T>
void conv2d_forward_im2col(T* y, const T* x, const T* w, const T* b, const ConvGeom& g);
template <class T>
void conv2d_backward_im2col(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                            const ConvGeom& g);
template <class T>
void conv2d_forward_reference(T* y, const T* x, const T* w, const T* b, const ConvGeom& g);
template <class T>
void conv2d_backward_reference(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const ConvGeom& g);

// P planes (N*C) of (H, W) -> (OH, OW), square window K, padding P <= K/2 (every window holds
// at least one input element).
struct PoolGeom {
  int64_t planes, H, W, K, stride, padding;
  int64_t OH() const { return (H + 2 * padding - K) / stride + 1; }
  int64_t OW() const { return (W + 2 * padding - K) / stride + 1; }
};

// argmax (planes, OH, OW): the winner's offset h*W + w inside its plane.
template <class T> void max_pool2d_forward(T* y, int32_t* argmax, const T* x, const PoolGeom& g);
template <class T> void max_pool2d_backward(T* dx, const T* dy, const int32_t* argmax, const PoolGeom& g);
// Divisor K*K everywhere (count_include_pad=True).
template <class T> void avg_pool2d_forward(T* y, const T* x, const PoolGeom& g);
template <class T> void avg_pool2d_backward(T* dx, const T* dy, const PoolGeom& g);

}  // namespace focus
