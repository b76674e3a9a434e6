// int8 convolution (see qconv.hpp).
#include "focus/kernels/qconv.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// rows (OH*OW, C*KH*KW) <- x (C, H, W): row p holds the window of output position p, in the
// weight's (c, kh, kw) order; zeros where the window hits the padding.
void im2row(float* rows, const float* x, const ConvGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW(), CKK = g.C * g.KH * g.KW;
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) {
      float* r = rows + (oh * OW + ow) * CKK;
      for (int64_t c = 0; c < g.C; ++c) {
        const float* xc = x + c * g.H * g.W;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
          const int64_t ih = oh * g.stride - g.padding + kh;
          float* dst = r + (c * g.KH + kh) * g.KW;
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const int64_t iw = ow * g.stride - g.padding + kw;
            dst[kw] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? xc[ih * g.W + iw] : 0.0f;
          }
        }
      }
    }
}

// One image: y (O, OHW) <- x (C, H, W) through the scratch buffers.
void one_image(float* y, const float* x, const QWeight& w, const float* bias, const ConvGeom& g,
               QEpilogue ep, std::vector<float>& rows, std::vector<float>& out) {
  const int64_t OHW = g.OH() * g.OW(), CKK = g.C * g.KH * g.KW;
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.stride == 1 && g.padding == 0;
  rows.resize(size_t(OHW * CKK));
  out.resize(size_t(OHW * g.O));
  if (pointwise) {  // the rows are the image transposed
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t p = 0; p < OHW; ++p) rows[size_t(p * CKK + c)] = x[c * OHW + p];
  } else {
    im2row(rows.data(), x, g);
  }
  qlinear_forward(out.data(), g.O, rows.data(), CKK, OHW, w, bias, ep);
  for (int64_t p = 0; p < OHW; ++p)
    for (int64_t o = 0; o < g.O; ++o) y[o * OHW + p] = out[size_t(p * g.O + o)];
}

}  // namespace

void conv2d_forward_int8(float* y, const float* x, const QWeight& w, const float* bias,
                         const ConvGeom& g, QEpilogue ep) {
  const int64_t CKK = g.C * g.KH * g.KW, OHW = g.OH() * g.OW(), CHW = g.C * g.H * g.W;
  FOCUS_CHECK(w.N == g.O && w.K == CKK, ShapeError,
              "conv2d_forward_int8: packed weight ({}, {}) for O {} and C*KH*KW {}", w.N, w.K, g.O,
              CKK);
  const bool par = g.N > 1 && num_threads() > 1 && !omp_in_parallel();
  const int nt = par ? int(std::min<int64_t>(num_threads(), g.N)) : 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<float> rows, out;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n)
      one_image(y + n * g.O * OHW, x + n * CHW, w, bias, g, ep, rows, out);
  }
}

}  // namespace focus
