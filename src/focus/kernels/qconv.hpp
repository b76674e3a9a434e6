// int8 convolution for inference (NCHW, F32 in and out) on the int8 GEMM (kernels/qgemm.hpp):
// per image, the im2row matrix (OH*OW rows of C*KH*KW window values) is quantised per row (one
// scale per output position), multiplied by the weight (O, C*KH*KW) packed as a QWeight (one
// scale per output channel), dequantised with the bias and transposed into y (O, OH, OW).
// Images run in parallel over the thread policy (each GEMM single-threaded); a single image
// (batch-1 inference) splits its rows over the threads instead. Geometry as kernels/conv.hpp
// (groups = 1, no dilation); callers validate shapes.
#pragma once
#include "focus/kernels/conv.hpp"
#include "focus/kernels/qgemm.hpp"

namespace focus {

// y (N, O, OH, OW) <- x (N, C, H, W), w packed from (O, C*KH*KW), bias (O) or null.
void conv2d_forward_int8(float* y, const float* x, const QWeight& w, const float* bias,
                         const ConvGeom& g, QEpilogue ep = QEpilogue::None);

}  // namespace focus
