// Convolution (the dispatch, im2col + GEMM, and the direct reference) and pooling kernels (see
// conv.hpp; the oneDNN kernels are in conv_onednn.cpp).
// Letters: N images, C input channels, O output channels, KH x KW kernel, OH x OW output,
// CKK = C*KH*KW (the im2col rows), OHW = OH*OW (its columns).
#include "focus/kernels/conv.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/conv_gemm.hpp"
#include "focus/kernels/conv_onednn.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/kernels/precision.hpp"

namespace focus {

namespace {

ConvKernel initial_conv_kernel() {
  const char* e = std::getenv("FOCUS_CONV");
  if (!e) return ConvKernel::Auto;
  if (!std::strcmp(e, "reference")) return ConvKernel::Reference;
  if (!std::strcmp(e, "im2col")) return ConvKernel::Im2col;
  if (!std::strcmp(e, "onednn")) return ConvKernel::OneDnn;
  if (!std::strcmp(e, "winograd")) return ConvKernel::Winograd;
  return ConvKernel::Auto;
}
std::atomic<ConvKernel> g_kernel{initial_conv_kernel()};

// Output columns [lo, hi) whose input column ow*stride - padding + k falls inside [0, W).
inline void valid_range(int64_t k, int64_t W, int64_t OW, int64_t stride, int64_t padding,
                        int64_t& lo, int64_t& hi) {
  const int64_t first = padding - k;  // smallest ow*stride allowed
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  const int64_t last = W - 1 + padding - k;  // largest ow*stride allowed
  hi = last < 0 ? 0 : std::min(OW, last / stride + 1);
  lo = std::min(lo, hi);
}

template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(n)]);
}

// Products big enough that splitting the images over threads pays.
constexpr int64_t kParallelWork = int64_t(1) << 20;
// Grouped lowering: aim for g_group_columns GEMM columns (images x OH*OW) per group, with at
// most kGroupBytes of im2col buffer per thread (so that it stays in the 2 MiB L2 cache).
std::atomic<int64_t> g_group_columns{512};
constexpr int64_t kGroupBytes = int64_t(1) << 20;

}  // namespace

void set_conv_kernel(ConvKernel k) { g_kernel = k; }
ConvKernel conv_kernel() { return g_kernel.load(); }
void set_conv_group_columns(int64_t columns) { g_group_columns = std::max<int64_t>(1, columns); }
int64_t conv_group_columns() { return g_group_columns.load(); }

// ---- im2col / col2im --------------------------------------------------------------------------

template <class T>
void im2col(T* col, int64_t ld, const T* x, const ConvGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW(), s = g.stride, p = g.padding;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        const T* xc = x + c * g.H * g.W;
        int64_t lo, hi;
        valid_range(kw, g.W, OW, s, p, lo, hi);
        for (int64_t oh = 0; oh < OH; ++oh) {
          T* dst = row + oh * OW;
          const int64_t ih = oh * s - p + kh;
          if (ih < 0 || ih >= g.H) {
            std::fill(dst, dst + OW, T(0));
            continue;
          }
          const int64_t base = ih * g.W - p + kw;  // xc[base + ow*s] is x[c, ih, ow*s - p + kw]
          std::fill(dst, dst + lo, T(0));
          if (s == 1) {
            std::memcpy(dst + lo, xc + base + lo, static_cast<size_t>(hi - lo) * sizeof(T));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = xc[base + ow * s];
          }
          std::fill(dst + hi, dst + OW, T(0));
        }
      }
}

template <class T>
void col2im(T* dx, const T* col, int64_t ld, const ConvGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW(), s = g.stride, p = g.padding;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* row = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        T* xc = dx + c * g.H * g.W;
        int64_t lo, hi;
        valid_range(kw, g.W, OW, s, p, lo, hi);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const T* src = row + oh * OW;
          const int64_t ih = oh * s - p + kh;
          if (ih < 0 || ih >= g.H) continue;
          const int64_t base = ih * g.W - p + kw;  // xc[base + ow*s] is dx[c, ih, ow*s - p + kw]
          if (s == 1) {
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ++ow) xc[base + ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) xc[base + ow * s] += src[ow];
          }
        }
      }
}

// ---- conv2d: grouped im2col + GEMM -------------------------------------------------------------

// ---- conv2d: dispatch ---------------------------------------------------------------------------

// Measured at cnn_se's layers, batch 128, 2 threads (bench/conv2d_bench.cpp; docs/BENCHMARKS.md
// "cnn_se training on oneDNN convolutions"): oneDNN's direct forward + backward took 0.55-0.75x
// the im2col kernel's time from 32 input channels up, on AVX-512 and capped at AVX2 alike, and
// Winograd (AVX-512 only) 0.35-0.5x, every pass included; on the first layer (1 input channel)
// oneDNN's backward_weights took 2.5x im2col's, Winograd's more. Shapes not measured (strided,
// other kernel sizes: the vit's patch embedding) stay on im2col.
bool conv_onednn_wins(const ConvGeom& g) {
  if (!onednn_enabled()) return false;
  return g.KH == 3 && g.KW == 3 && g.stride == 1 && g.C >= 16;
}

namespace {

// The oneDNN options kernel k takes for g, or nothing where it runs im2col (or the reference).
// At bf16 precision oneDNN runs only on bf16 hardware (its bf16 kernels elsewhere are its
// reference loops); im2col's GEMMs emulate it otherwise.
std::optional<OneDnnConvOptions> onednn_options(ConvKernel k, const ConvGeom& g) {
  const bool bf16 = compute_precision() == Precision::Bf16;
  if (bf16 && !bf16_hardware()) return std::nullopt;
  switch (k) {
    case ConvKernel::OneDnn: return OneDnnConvOptions{false, true, bf16};
    case ConvKernel::Winograd: return OneDnnConvOptions{true, true, bf16};
    case ConvKernel::Auto:
      if (!conv_onednn_wins(g)) return std::nullopt;
      return OneDnnConvOptions{!bf16, false, bf16};
    default: return std::nullopt;
  }
}

// A copy of n floats rounded to bf16: the reference kernel's inputs at bf16 precision.
std::vector<float> rounded(const float* p, int64_t n) {
  std::vector<float> r(static_cast<size_t>(n));
  round_to_bf16(r.data(), p, n);
  return r;
}

}  // namespace

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvGeom& g) {
  const ConvKernel k = conv_kernel();
  if (k == ConvKernel::Reference) {
    if constexpr (std::is_same_v<T, float>) {
      if (compute_precision() == Precision::Bf16) {
        const auto rx = rounded(x, g.N * g.C * g.H * g.W), rw = rounded(w, g.O * g.C * g.KH * g.KW);
        return conv2d_forward_reference(y, rx.data(), rw.data(), b, g);
      }
    }
    return conv2d_forward_reference(y, x, w, b, g);
  }
  if constexpr (std::is_same_v<T, float>) {
    const auto opt = onednn_options(k, g);
    if (opt && conv2d_forward_onednn(y, x, w, b, g, *opt)) return;
  }
  conv2d_forward_im2col(y, x, w, b, g);
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvGeom& g) {
  const ConvKernel k = conv_kernel();
  if (k == ConvKernel::Reference) {
    if constexpr (std::is_same_v<T, float>) {
      if (compute_precision() == Precision::Bf16) {
        const auto rdy = rounded(dy, g.N * g.O * g.OH() * g.OW()),
                   rx = rounded(x, g.N * g.C * g.H * g.W), rw = rounded(w, g.O * g.C * g.KH * g.KW);
        return conv2d_backward_reference(dx, dw, db, rdy.data(), rx.data(), rw.data(), g);
      }
    }
    return conv2d_backward_reference(dx, dw, db, dy, x, w, g);
  }
  if constexpr (std::is_same_v<T, float>) {
    const auto opt = onednn_options(k, g);
    if (opt && conv2d_backward_onednn(dx, dw, db, dy, x, w, g, *opt)) return;
  }
  conv2d_backward_im2col(dx, dw, db, dy, x, w, g);
}

namespace {

// 1x1, stride 1, no padding: the image itself is its im2col matrix.
inline bool is_pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.stride == 1 && g.padding == 0;
}

// How the images are cut into groups: `size` images per group (the last may have fewer),
// `threads` > 1 when the groups run in parallel (each GEMM then single-threaded).
struct Grouping {
  int64_t size, count;
  int threads;
};

Grouping conv_grouping(const ConvGeom& g, size_t elem_bytes) {
  const int64_t OHW = g.OH() * g.OW(), CKK = g.C * g.KH * g.KW;
  const bool par = g.N > 1 && num_threads() > 1 && g.N * g.O * OHW * CKK > kParallelWork;
  const int nt = par ? num_threads() : 1;
  // Wide enough for an efficient GEMM, small enough for the column buffer, and at least one
  // group per thread.
  int64_t size = std::max<int64_t>(1, conv_group_columns() / OHW);
  size = std::min(size, std::max<int64_t>(1, kGroupBytes / (CKK * OHW * static_cast<int64_t>(elem_bytes))));
  size = std::min(size, (g.N + nt - 1) / nt);
  const int64_t count = (g.N + size - 1) / size;
  return {size, count, nt};
}

}  // namespace

// Per group of G images n0..n0+G-1: col (CKK, G*OHW) holds their im2col side by side,
// Y (O, G*OHW) = w (O, CKK) @ col, and each image's block of columns goes to y_n (O, OHW) [+ b].
// A group of one image writes y_n directly.
template <class T>
void conv2d_forward_im2col(T* y, const T* x, const T* w, const T* b, const ConvGeom& g) {
  const int64_t OHW = g.OH() * g.OW(), CKK = g.C * g.KH * g.KW, CHW = g.C * g.H * g.W;
  const bool pointwise = is_pointwise(g);
  const Grouping gr = conv_grouping(g, sizeof(T));
#pragma omp parallel num_threads(gr.threads) if (gr.threads > 1)
  {
    const bool need_col = !pointwise || gr.size > 1;
    std::unique_ptr<T[]> col = need_col ? scratch<T>(CKK * gr.size * OHW) : nullptr;
    std::unique_ptr<T[]> yg = gr.size > 1 ? scratch<T>(g.O * gr.size * OHW) : nullptr;
#pragma omp for schedule(static)
    for (int64_t grp = 0; grp < gr.count; ++grp) {
      const int64_t n0 = grp * gr.size, G = std::min(gr.size, g.N - n0), L = G * OHW;
      const T* cn = x + n0 * CHW;
      if (!(pointwise && G == 1)) {
        for (int64_t j = 0; j < G; ++j) im2col(col.get() + j * OHW, L, x + (n0 + j) * CHW, g);
        cn = col.get();
      }
      if (G == 1) {
        T* yn = y + n0 * g.O * OHW;
        if (b)
          for (int64_t o = 0; o < g.O; ++o) std::fill(yn + o * OHW, yn + (o + 1) * OHW, b[o]);
        conv_gemm(false, false, g.O, OHW, CKK, w, CKK, cn, OHW, b ? T(1) : T(0), yn, OHW);
        continue;
      }
      conv_gemm(false, false, g.O, L, CKK, w, CKK, cn, L, T(0), yg.get(), L);
      for (int64_t j = 0; j < G; ++j)
        for (int64_t o = 0; o < g.O; ++o) {
          const T* src = yg.get() + o * L + j * OHW;
          T* dst = y + ((n0 + j) * g.O + o) * OHW;
          const T bo = b ? b[o] : T(0);
#pragma omp simd
          for (int64_t i = 0; i < OHW; ++i) dst[i] = src[i] + bo;
        }
    }
  }
}

// Per group (as the forward): dY (O, G*OHW) gathers the group's dy_n side by side;
// dw += dY @ col^T (G*OHW, CKK) into a per-thread sum (added in thread order, so the result
// depends on the thread count only through rounding); dcol (CKK, G*OHW) = w^T (CKK, O) @ dY,
// folded back image by image by col2im; db = sum of dy over n, OH, OW.
template <class T>
void conv2d_backward_im2col(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                            const ConvGeom& g) {
  const int64_t OHW = g.OH() * g.OW(), CKK = g.C * g.KH * g.KW, CHW = g.C * g.H * g.W;
  const bool pointwise = is_pointwise(g);
  const Grouping gr = conv_grouping(g, sizeof(T));
  const int nt = gr.threads;
  // Per-thread dw / db partial sums, (nt, O, CKK) and (nt, O).
  std::vector<T> dw_part(dw ? static_cast<size_t>(nt * g.O * CKK) : 0, T(0));
  std::vector<T> db_part(db ? static_cast<size_t>(nt * g.O) : 0, T(0));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num();
    const bool need_col = !pointwise || gr.size > 1;
    std::unique_ptr<T[]> col = need_col ? scratch<T>(CKK * gr.size * OHW) : nullptr;
    std::unique_ptr<T[]> dyg = gr.size > 1 ? scratch<T>(g.O * gr.size * OHW) : nullptr;
#pragma omp for schedule(static)
    for (int64_t grp = 0; grp < gr.count; ++grp) {
      const int64_t n0 = grp * gr.size, G = std::min(gr.size, g.N - n0), L = G * OHW;
      const T* dY = dy + n0 * g.O * OHW;
      if (G > 1) {
        for (int64_t j = 0; j < G; ++j)
          for (int64_t o = 0; o < g.O; ++o)
            std::memcpy(dyg.get() + o * L + j * OHW, dy + ((n0 + j) * g.O + o) * OHW,
                        static_cast<size_t>(OHW) * sizeof(T));
        dY = dyg.get();
      }
      if (dw) {
        const T* cn = x + n0 * CHW;
        if (!(pointwise && G == 1)) {
          for (int64_t j = 0; j < G; ++j) im2col(col.get() + j * OHW, L, x + (n0 + j) * CHW, g);
          cn = col.get();
        }
        conv_gemm(false, true, g.O, CKK, L, dY, L, cn, L, T(1), &dw_part[t * g.O * CKK], CKK);
      }
      if (dx) {
        T* dxn = dx + n0 * CHW;
        if (pointwise && G == 1) {
          conv_gemm(true, false, CKK, OHW, g.O, w, CKK, dY, OHW, T(0), dxn, OHW);
        } else {
          conv_gemm(true, false, CKK, L, g.O, w, CKK, dY, L, T(0), col.get(), L);
          std::fill(dxn, dxn + G * CHW, T(0));
          for (int64_t j = 0; j < G; ++j) col2im(dxn + j * CHW, col.get() + j * OHW, L, g);
        }
      }
      if (db)
        for (int64_t o = 0; o < g.O; ++o) {
          T s = 0;
#pragma omp simd reduction(+ : s)
          for (int64_t i = 0; i < L; ++i) s += dY[o * L + i];
          db_part[t * g.O + o] += s;
        }
    }
  }
  if (dw) {
    std::copy(dw_part.begin(), dw_part.begin() + g.O * CKK, dw);
    for (int t = 1; t < nt; ++t)
      for (int64_t i = 0; i < g.O * CKK; ++i) dw[i] += dw_part[t * g.O * CKK + i];
  }
  if (db) {
    std::copy(db_part.begin(), db_part.begin() + g.O, db);
    for (int t = 1; t < nt; ++t)
      for (int64_t o = 0; o < g.O; ++o) db[o] += db_part[t * g.O + o];
  }
}

// ---- conv2d: direct reference ------------------------------------------------------------------

// y[n,o,oh,ow] = b[o] + sum_{c,kh,kw} x[n, c, oh*s-p+kh, ow*s-p+kw] * w[o,c,kh,kw], in double.
template <class T>
void conv2d_forward_reference(T* y, const T* x, const T* w, const T* b, const ConvGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b ? static_cast<double>(b[o]) : 0.0;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * g.stride - g.padding + kh, iw = ow * g.stride - g.padding + kw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                acc += static_cast<double>(x[((n * g.C + c) * g.H + ih) * g.W + iw]) *
                       static_cast<double>(w[((o * g.C + c) * g.KH + kh) * g.KW + kw]);
              }
          y[((n * g.O + o) * OH + oh) * OW + ow] = static_cast<T>(acc);
        }
}

// The same loops, each product's gradient sent to both factors, in double.
template <class T>
void conv2d_backward_reference(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const ConvGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW();
  std::vector<double> gx(dx ? g.N * g.C * g.H * g.W : 0), gw(dw ? g.O * g.C * g.KH * g.KW : 0),
      gb(db ? g.O : 0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const double d = static_cast<double>(dy[((n * g.O + o) * OH + oh) * OW + ow]);
          if (db) gb[o] += d;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * g.stride - g.padding + kh, iw = ow * g.stride - g.padding + kw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int64_t xi = ((n * g.C + c) * g.H + ih) * g.W + iw;
                const int64_t wi = ((o * g.C + c) * g.KH + kh) * g.KW + kw;
                if (dx) gx[xi] += d * static_cast<double>(w[wi]);
                if (dw) gw[wi] += d * static_cast<double>(x[xi]);
              }
        }
  for (size_t i = 0; i < gx.size(); ++i) dx[i] = static_cast<T>(gx[i]);
  for (size_t i = 0; i < gw.size(); ++i) dw[i] = static_cast<T>(gw[i]);
  for (size_t i = 0; i < gb.size(); ++i) db[i] = static_cast<T>(gb[i]);
}

// ---- pooling -----------------------------------------------------------------------------------
// Each output row oh is built from the input rows h of its window: for every window column kw,
// the outputs whose column ow*stride - padding + kw is inside the input take xrow[ow*stride +
// kw - padding] in one vectorisable sweep over ow (valid_range gives the sweep's bounds).

namespace {
inline bool pool_parallel(const PoolGeom& g) {
  return g.planes > 1 && g.planes * g.OH() * g.OW() * g.K * g.K > (int64_t(1) << 16);
}
// Input rows [h0, h1) of output row oh's window.
inline void window_rows(const PoolGeom& g, int64_t oh, int64_t& h0, int64_t& h1) {
  const int64_t hs = oh * g.stride - g.padding;
  h0 = std::max<int64_t>(hs, 0);
  h1 = std::min(hs + g.K, g.H);
}
}  // namespace

// Windows are scanned row by row, so a strict `>` keeps the first maximum in row-major order;
// a NaN in a window wins (propagates), as in torch.
namespace {

// The common 2x2 window, stride 2, no padding (cnn_se's pool): each output reads two input rows
// at 2*ow and 2*ow + 1, the same four candidates in the same order as the general loop below
// (so the same winner, NaN rule included), without its passes over the output row per window
// element (5% of the cnn_se training step before, measured with perf).
template <class T>
void max_pool2x2(T* y, int32_t* argmax, const T* x, const PoolGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW(), HW = g.H * g.W, W = g.W;
#pragma omp parallel for schedule(static) if (pool_parallel(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * HW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t r0 = 2 * oh * W, r1 = r0 + W;  // offsets of the window's two rows
      T* yr = y + (pl * OH + oh) * OW;
      int32_t* ar = argmax + (pl * OH + oh) * OW;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t c0 = r0 + 2 * ow, c1 = r1 + 2 * ow;
        T best = xp[c0];
        int64_t at = c0;
        if (xp[c0 + 1] > best || xp[c0 + 1] != xp[c0 + 1]) best = xp[c0 + 1], at = c0 + 1;
        if (xp[c1] > best || xp[c1] != xp[c1]) best = xp[c1], at = c1;
        if (xp[c1 + 1] > best || xp[c1 + 1] != xp[c1 + 1]) best = xp[c1 + 1], at = c1 + 1;
        // best starts at the first candidate rather than -inf: the same winner, since a first
        // candidate of -inf (or NaN) is what the general loop would keep too.
        yr[ow] = best;
        ar[ow] = static_cast<int32_t>(at);
      }
    }
  }
}

}  // namespace

template <class T>
void max_pool2d_forward(T* y, int32_t* argmax, const T* x, const PoolGeom& g) {
  if (g.K == 2 && g.stride == 2 && g.padding == 0) return max_pool2x2(y, argmax, x, g);
  const int64_t OH = g.OH(), OW = g.OW(), HW = g.H * g.W, s = g.stride, p = g.padding;
#pragma omp parallel for schedule(static) if (pool_parallel(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * HW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      T* yr = y + (pl * OH + oh) * OW;
      int32_t* ar = argmax + (pl * OH + oh) * OW;
      int64_t h0, h1;
      window_rows(g, oh, h0, h1);
      for (int64_t ow = 0; ow < OW; ++ow) {  // the window's first inside element, until beaten
        yr[ow] = -std::numeric_limits<T>::infinity();
        ar[ow] = static_cast<int32_t>(h0 * g.W + std::max<int64_t>(ow * s - p, 0));
      }
      for (int64_t h = h0; h < h1; ++h)
        for (int64_t kw = 0; kw < g.K; ++kw) {
          int64_t lo, hi;
          valid_range(kw, g.W, OW, s, p, lo, hi);
          const int64_t base = h * g.W + kw - p;  // xp[base + ow*s] is x[h, ow*s - p + kw]
#pragma omp simd
          for (int64_t ow = lo; ow < hi; ++ow) {
            const T v = xp[base + ow * s];
            if (v > yr[ow] || v != v) {
              yr[ow] = v;
              ar[ow] = static_cast<int32_t>(base + ow * s);
            }
          }
        }
    }
  }
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const int32_t* argmax, const PoolGeom& g) {
  const int64_t OHW = g.OH() * g.OW(), HW = g.H * g.W;
#pragma omp parallel for schedule(static) if (pool_parallel(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    T* dxp = dx + pl * HW;
    const T* dyp = dy + pl * OHW;
    const int32_t* ap = argmax + pl * OHW;
    std::fill(dxp, dxp + HW, T(0));
    for (int64_t i = 0; i < OHW; ++i) dxp[ap[i]] += dyp[i];
  }
}

template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW(), HW = g.H * g.W, s = g.stride, p = g.padding;
  const T inv = T(1) / static_cast<T>(g.K * g.K);
#pragma omp parallel for schedule(static) if (pool_parallel(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * HW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      T* yr = y + (pl * OH + oh) * OW;
      int64_t h0, h1;
      window_rows(g, oh, h0, h1);
      std::fill(yr, yr + OW, T(0));
      for (int64_t h = h0; h < h1; ++h)
        for (int64_t kw = 0; kw < g.K; ++kw) {
          int64_t lo, hi;
          valid_range(kw, g.W, OW, s, p, lo, hi);
          const int64_t base = h * g.W + kw - p;
#pragma omp simd
          for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += xp[base + ow * s];
        }
#pragma omp simd
      for (int64_t ow = 0; ow < OW; ++ow) yr[ow] *= inv;
    }
  }
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolGeom& g) {
  const int64_t OH = g.OH(), OW = g.OW(), HW = g.H * g.W, s = g.stride, p = g.padding;
  const T inv = T(1) / static_cast<T>(g.K * g.K);
#pragma omp parallel for schedule(static) if (pool_parallel(g))
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    T* dxp = dx + pl * HW;
    std::fill(dxp, dxp + HW, T(0));
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* dyr = dy + (pl * OH + oh) * OW;
      int64_t h0, h1;
      window_rows(g, oh, h0, h1);
      for (int64_t h = h0; h < h1; ++h)
        for (int64_t kw = 0; kw < g.K; ++kw) {
          int64_t lo, hi;
          valid_range(kw, g.W, OW, s, p, lo, hi);
          const int64_t base = h * g.W + kw - p;
#pragma omp simd
          for (int64_t ow = lo; ow < hi; ++ow) dxp[base + ow * s] += dyr[ow] * inv;
        }
    }
  }
}

// ---- instantiations ----------------------------------------------------------------------------

#define FOCUS_CONV_INSTANTIATE(T)                                                                \
  template void im2col<T>(T*, int64_t, const T*, const ConvGeom&);                               \
  template void col2im<T>(T*, const T*, int64_t, const ConvGeom&);                               \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const ConvGeom&);            \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const ConvGeom&);   \
  template void conv2d_forward_im2col<T>(T*, const T*, const T*, const T*, const ConvGeom&);     \
  template void conv2d_backward_im2col<T>(T*, T*, T*, const T*, const T*, const T*,              \
                                          const ConvGeom&);                                      \
  template void conv2d_forward_reference<T>(T*, const T*, const T*, const T*, const ConvGeom&);  \
  template void conv2d_backward_reference<T>(T*, T*, T*, const T*, const T*, const T*,           \
                                             const ConvGeom&);                                   \
  template void max_pool2d_forward<T>(T*, int32_t*, const T*, const PoolGeom&);                  \
  template void max_pool2d_backward<T>(T*, const T*, const int32_t*, const PoolGeom&);           \
  template void avg_pool2d_forward<T>(T*, const T*, const PoolGeom&);                            \
  template void avg_pool2d_backward<T>(T*, const T*, const PoolGeom&);
FOCUS_CONV_INSTANTIATE(float)
FOCUS_CONV_INSTANTIATE(double)
#undef FOCUS_CONV_INSTANTIATE

}  // namespace focus
