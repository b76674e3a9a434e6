// int8 convolution for inference (NCHW, F32 in and out) on the int8 GEMM (kernels/qgemm.hpp):
// per image, the im2row matrix (OH*OW rows of KH*KW*C window values, built from the image
// transposed to (H, W, C)) is quantised per row (one scale per output position), multiplied by
// the weight packed as a QWeight from (O, KH, KW, C) order (one scale per output channel:
// conv_weight_hwc reorders torch's (O, C, KH, KW)), and dequantised with the bias into
// y (O, OH, OW).
// Images run in parallel over the thread policy (each GEMM single-threaded); a single image
// (batch-1 inference) splits its rows over the threads instead. Geometry as kernels/conv.hpp
// (groups = 1, no dilation); callers validate shapes.
#pragma once
#include "focus/kernels/conv.hpp"
#include "focus/kernels/qgemm.hpp"

namespace focus {

// w (O, C, KH, KW) -> out (O, KH, KW, C), the order conv2d_forward_int8's weight is packed in.
void conv_weight_hwc(float* out, const float* w, int64_t O, int64_t C, int64_t KH, int64_t KW);
// y (N, O, OH, OW) = ep(out_scale[o] * conv(x, w) + bias[o]) <- x (N, C, H, W), w packed from
// (O, KH*KW*C); bias (O) or null; out_scale (O) or null (1): an eval-mode batch norm folds into
// out_scale and bias, ReLU into the epilogue (nn/conv.hpp Conv2d::forward_bn).
void conv2d_forward_int8(float* y, const float* x, const QWeight& w, const float* bias,
                         const ConvGeom& g, QEpilogue ep = QEpilogue::None,
                         const float* out_scale = nullptr);

}  // namespace focus
