// Convolution and pooling kernels: the im2col + GEMM conv and the oneDNN conv against the direct
// reference on random shapes (forward and every backward output, F32 and F64 for im2col, pointwise
// and strided cases, channel counts off the 8/16 blocks, sizes big enough for the threaded path,
// small planes grouped several images per GEMM), the kernel switch, im2col/col2im as adjoints,
// pooling against naive loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <thread>
#include <vector>

#include "focus/kernels/conv.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/conv_gemm.hpp"
#include "focus/kernels/conv_onednn.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/tensor/rng.hpp"
#include "support/vector_diff.hpp"

using namespace focus;
using focus::testing::max_rel_diff;

namespace {

template <class T>
std::vector<T> randn(int64_t n, Rng& rng) {
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(rng.normal());
  return v;
}

// Forward and backward of the im2col kernel against the reference for one geometry.
template <class T>
void check_conv(const ConvGeom& g, Rng& rng, double tol) {
  const int64_t xn = g.N * g.C * g.H * g.W, wn = g.O * g.C * g.KH * g.KW, yn = g.N * g.O * g.OH() * g.OW();
  const auto x = randn<T>(xn, rng), w = randn<T>(wn, rng), b = randn<T>(g.O, rng), dy = randn<T>(yn, rng);
  std::vector<T> y(yn), yr(yn);
  conv2d_forward_im2col(y.data(), x.data(), w.data(), b.data(), g);
  conv2d_forward_reference(yr.data(), x.data(), w.data(), b.data(), g);
  const auto where = ::testing::Message() << "N=" << g.N << " C=" << g.C << " H=" << g.H << " W=" << g.W
                                          << " O=" << g.O << " K=" << g.KH << "x" << g.KW
                                          << " s=" << g.stride << " p=" << g.padding;
  EXPECT_LT(max_rel_diff(y, yr), tol) << "forward " << where;
  conv2d_forward_im2col(y.data(), x.data(), w.data(), static_cast<const T*>(nullptr), g);
  conv2d_forward_reference(yr.data(), x.data(), w.data(), static_cast<const T*>(nullptr), g);
  EXPECT_LT(max_rel_diff(y, yr), tol) << "forward without bias " << where;

  std::vector<T> dx(xn), dw(wn), db(g.O), dxr(xn), dwr(wn), dbr(g.O);
  conv2d_backward_im2col(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), g);
  conv2d_backward_reference(dxr.data(), dwr.data(), dbr.data(), dy.data(), x.data(), w.data(), g);
  EXPECT_LT(max_rel_diff(dx, dxr), tol) << "dx " << where;
  EXPECT_LT(max_rel_diff(dw, dwr), tol) << "dw " << where;
  EXPECT_LT(max_rel_diff(db, dbr), tol) << "db " << where;
  // Each output alone (the others null) gives the same values.
  std::vector<T> dx1(xn), dw1(wn);
  conv2d_backward_im2col(dx1.data(), static_cast<T*>(nullptr), static_cast<T*>(nullptr), dy.data(),
                         x.data(), w.data(), g);
  conv2d_backward_im2col(static_cast<T*>(nullptr), dw1.data(), static_cast<T*>(nullptr), dy.data(),
                         x.data(), w.data(), g);
  EXPECT_EQ(dx1, dx) << where;
  EXPECT_EQ(dw1, dw) << where;
}

}  // namespace

TEST(ConvKernel, Im2colMatchesReferenceOnRandomShapes) {
  Rng rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    ConvGeom g;
    g.N = 1 + rng.randint(3);
    g.C = 1 + rng.randint(4);
    g.O = 1 + rng.randint(5);
    g.KH = 1 + rng.randint(4);
    g.KW = 1 + rng.randint(4);
    g.stride = 1 + rng.randint(3);
    g.padding = rng.randint(3);
    g.H = std::max<int64_t>(1, g.KH - 2 * g.padding) + rng.randint(8);
    g.W = std::max<int64_t>(1, g.KW - 2 * g.padding) + rng.randint(8);
    if (trial % 2) check_conv<float>(g, rng, 1e-5);
    else check_conv<double>(g, rng, 1e-12);
  }
}

TEST(ConvKernel, Im2colMatchesReferenceOnThreadedSizes) {
  Rng rng(12);
  // Big enough for the per-image threads; 3x3 pad 1 (the CNN's layer), strided, and pointwise.
  check_conv<float>({8, 8, 12, 12, 16, 3, 3, 1, 1}, rng, 1e-5);
  check_conv<float>({6, 5, 13, 11, 12, 3, 3, 2, 1}, rng, 1e-5);
  check_conv<float>({8, 32, 10, 10, 24, 1, 1, 1, 0}, rng, 1e-5);
  check_conv<double>({5, 3, 9, 10, 4, 1, 1, 1, 0}, rng, 1e-12);
}

TEST(ConvKernel, GroupedIm2colMatchesReference) {
  // Small planes put several images into one GEMM: groups of 5 + 4 on two threads, one group of
  // 9 on one thread (pointwise: the images are gathered), strided, and a last partial group.
  Rng rng(15);
  check_conv<float>({9, 16, 6, 6, 32, 3, 3, 1, 1}, rng, 1e-5);
  check_conv<float>({9, 32, 6, 6, 32, 1, 1, 1, 0}, rng, 1e-5);
  check_conv<float>({11, 8, 7, 9, 12, 3, 3, 2, 1}, rng, 1e-5);
  check_conv<double>({7, 24, 5, 4, 20, 3, 2, 1, 1}, rng, 1e-12);
}

TEST(ConvKernel, ConvGemmMatchesReferenceGemm) {
  // conv_gemm against the naive triple loop: both transposes, beta 0 and 1, edges of the 8x48
  // tile and of the 128-step blocks, padded ld, a product big enough to split over the threads.
  // Once on one thread, where an AVX-512 run must take the blocked kernel for an untransposed B
  // (the path is asserted, so the test cannot pass without reaching it), and once on two, where
  // the product goes to gemm(). Under FOCUS_FORCE_ISA=avx2|scalar nothing takes the blocked path.
  Rng rng(16);
  const int saved_threads = num_threads();
  int64_t blocked = 0;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const auto& [M, N, K] : std::vector<std::array<int64_t, 3>>{
             {8, 48, 128}, {13, 50, 129}, {32, 100, 300}, {1, 1, 1}, {70, 17, 257}, {9, 200, 5},
             {40, 300, 100}})
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (float beta : {0.0f, 1.0f}) {
            const ConvGemmPath path = conv_gemm_path(tb, M, N, K);
            const bool want_blocked = active_isa() == Isa::Avx512 && threads == 1 && !tb &&
                                      gemm_kernel() == GemmKernel::Auto;
            EXPECT_EQ(path == ConvGemmPath::Blocked, want_blocked)
                << "threads " << threads << " tb " << tb << " isa " << isa_name(active_isa());
            blocked += path == ConvGemmPath::Blocked;
            const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            const auto A = randn<float>((ta ? K : M) * lda, rng), B = randn<float>((tb ? N : K) * ldb, rng);
            const auto C0 = randn<float>(M * ldc, rng);
            std::vector<float> C = C0, Cr = C0;
            conv_gemm<float>(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
            gemm_reference<float>(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, beta, Cr.data(), ldc);
            EXPECT_LT(max_rel_diff(C, Cr), 1e-5) << M << "x" << N << "x" << K << " ta=" << ta
                                             << " tb=" << tb << " beta=" << beta << " threads=" << threads;
          }
  }
  set_num_threads(saved_threads);
  std::printf("conv_gemm: %lld of 112 products on the blocked AVX-512 kernel (active ISA %s)\n",
              static_cast<long long>(blocked), isa_name(active_isa()).c_str());
  EXPECT_EQ(blocked, active_isa() == Isa::Avx512 && gemm_kernel() == GemmKernel::Auto ? 28 : 0);
}

namespace {

// The oneDNN kernels against the reference for one geometry (F32): forward with and without
// bias, and backward with every subset of dx, dw, db asked for. Each call must run on oneDNN
// where oneDNN is enabled (it reports false otherwise) and must refuse under the scalar ISA.
void check_onednn(const ConvGeom& g, Rng& rng, const OneDnnConvOptions& opt, double tol) {
  const int64_t xn = g.N * g.C * g.H * g.W, wn = g.O * g.C * g.KH * g.KW, yn = g.N * g.O * g.OH() * g.OW();
  const auto x = randn<float>(xn, rng), w = randn<float>(wn, rng), b = randn<float>(g.O, rng),
             dy = randn<float>(yn, rng);
  const auto where = ::testing::Message() << "N=" << g.N << " C=" << g.C << " H=" << g.H << " W=" << g.W
                                          << " O=" << g.O << " K=" << g.KH << "x" << g.KW
                                          << " s=" << g.stride << " p=" << g.padding
                                          << " winograd " << opt.winograd;
  const bool on = onednn_enabled();
  for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
    std::vector<float> y(yn, -7.f), yr(yn);
    ASSERT_EQ(conv2d_forward_onednn(y.data(), x.data(), w.data(), bias, g, opt), on) << where;
    if (!on) return;
    conv2d_forward_reference(yr.data(), x.data(), w.data(), bias, g);
    EXPECT_LT(max_rel_diff(y, yr), tol) << "forward, bias " << (bias != nullptr) << " " << where;
  }
  std::vector<float> dxr(xn), dwr(wn), dbr(g.O);
  conv2d_backward_reference(dxr.data(), dwr.data(), dbr.data(), dy.data(), x.data(), w.data(), g);
  for (int mask = 1; mask < 8; ++mask) {  // bit 0 dx, bit 1 dw, bit 2 db
    std::vector<float> dx(xn, -7.f), dw(wn, -7.f), db(g.O, -7.f);  // -7: written, not accumulated
    ASSERT_TRUE(conv2d_backward_onednn(mask & 1 ? dx.data() : nullptr, mask & 2 ? dw.data() : nullptr,
                                       mask & 4 ? db.data() : nullptr, dy.data(), x.data(), w.data(), g, opt))
        << where;
    if (mask & 1) { EXPECT_LT(max_rel_diff(dx, dxr), tol) << "dx, mask " << mask << " " << where; }
    if (mask & 2) { EXPECT_LT(max_rel_diff(dw, dwr), tol) << "dw, mask " << mask << " " << where; }
    if (mask & 4) { EXPECT_LT(max_rel_diff(db, dbr), tol) << "db, mask " << mask << " " << where; }
  }
}

}  // namespace

TEST(ConvKernel, OneDnnMatchesReference) {
  Rng rng(17);
  // cnn_se's layers (3x3, padding 1) cut to 3 images, channel counts off the 8/16 blocks,
  // strides 2 and 3 with padding 0..2 (including a floor in OH), non-square kernels and planes,
  // pointwise, one input channel, and a batch of 1.
  for (const ConvGeom& g : {ConvGeom{3, 1, 28, 28, 32, 3, 3, 1, 1}, ConvGeom{3, 32, 14, 14, 64, 3, 3, 1, 1},
                            ConvGeom{2, 128, 7, 7, 128, 3, 3, 1, 1}, ConvGeom{2, 5, 9, 7, 13, 3, 3, 1, 1},
                            ConvGeom{3, 17, 10, 11, 9, 3, 3, 2, 1}, ConvGeom{2, 6, 12, 9, 20, 3, 2, 3, 2},
                            ConvGeom{2, 7, 8, 8, 3, 4, 4, 4, 0}, ConvGeom{2, 24, 6, 5, 19, 1, 1, 1, 0},
                            ConvGeom{1, 3, 5, 6, 4, 2, 3, 1, 0}, ConvGeom{4, 33, 9, 9, 31, 3, 3, 1, 2}}) {
    check_onednn(g, rng, {false, true}, 1e-5);
    // Winograd where oneDNN has it (3x3 stride 1 on AVX-512), direct elsewhere. Its transforms
    // multiply the inputs' rounding by constants up to ~10 (F(4x4, 3x3)): 1e-4 relative.
    check_onednn(g, rng, {true, true}, 1e-4);
  }
}

TEST(ConvKernel, OneDnnAcrossThreadCountsAndThreads) {
  // The primitives are cached per thread count: one thread, two, then two again from another
  // thread (whose OpenMP count is its own), each against the reference, Winograd and direct.
  Rng rng(19);
  const ConvGeom g{6, 32, 14, 14, 24, 3, 3, 1, 1};
  const int saved = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    check_onednn(g, rng, {true, true}, 1e-4);
    check_onednn(g, rng, {false, true}, 1e-5);
  }
  std::thread([&] { check_onednn(g, rng, {true, true}, 1e-4); }).join();
  set_num_threads(saved);
}

TEST(ConvKernel, SwitchRoutesDispatch) {
  // The dispatcher with a kernel forced equals that kernel called directly, bit for bit; Auto
  // takes oneDNN exactly where conv_onednn_wins says so.
  Rng rng(13);
  for (const ConvGeom& g : {ConvGeom{2, 3, 6, 5, 4, 3, 2, 1, 1}, ConvGeom{2, 20, 6, 6, 18, 3, 3, 1, 1}}) {
    const auto x = randn<float>(g.N * g.C * g.H * g.W, rng), w = randn<float>(g.O * g.C * g.KH * g.KW, rng);
    const int64_t yn = g.N * g.O * g.OH() * g.OW();
    std::vector<float> y(yn), ref(yn), im(yn), dnn(yn, 0.f), wino(yn, 0.f);
    const float* nob = nullptr;
    conv2d_forward_reference(ref.data(), x.data(), w.data(), nob, g);
    conv2d_forward_im2col(im.data(), x.data(), w.data(), nob, g);
    const bool on = conv2d_forward_onednn(dnn.data(), x.data(), w.data(), nob, g, {false, true});
    conv2d_forward_onednn(wino.data(), x.data(), w.data(), nob, g, {true, true});
    for (const auto& [k, want] : std::vector<std::pair<ConvKernel, const std::vector<float>*>>{
             {ConvKernel::Reference, &ref}, {ConvKernel::Im2col, &im}, {ConvKernel::OneDnn, on ? &dnn : &im},
             {ConvKernel::Winograd, on ? &wino : &im}, {ConvKernel::Auto, on && conv_onednn_wins(g) ? &wino : &im}}) {
      set_conv_kernel(k);
      conv2d_forward(y.data(), x.data(), w.data(), nob, g);
      EXPECT_EQ(y, *want) << "kernel " << int(k) << " C " << g.C;
    }
    set_conv_kernel(ConvKernel::Auto);
  }
  // F64 never goes to oneDNN: forced onednn runs im2col.
  const ConvGeom g{2, 4, 5, 5, 3, 3, 3, 1, 1};
  const auto x = randn<double>(2 * 4 * 25, rng), w = randn<double>(3 * 4 * 9, rng);
  std::vector<double> y(2 * 3 * 25), im(y.size());
  conv2d_forward_im2col(im.data(), x.data(), w.data(), static_cast<const double*>(nullptr), g);
  set_conv_kernel(ConvKernel::OneDnn);
  conv2d_forward(y.data(), x.data(), w.data(), static_cast<const double*>(nullptr), g);
  set_conv_kernel(ConvKernel::Auto);
  EXPECT_EQ(y, im);
}

TEST(ConvKernel, Col2imIsTheAdjointOfIm2col) {
  // <im2col(x), c> == <x, col2im(c)> for random x and c.
  Rng rng(14);
  for (const ConvGeom& g : {ConvGeom{1, 3, 7, 6, 1, 3, 3, 1, 1}, ConvGeom{1, 2, 9, 8, 1, 3, 2, 2, 1},
                            ConvGeom{1, 2, 5, 5, 1, 2, 4, 3, 2}}) {
    const int64_t xn = g.C * g.H * g.W, cn = g.C * g.KH * g.KW * g.OH() * g.OW();
    const auto x = randn<double>(xn, rng), c = randn<double>(cn, rng);
    std::vector<double> col(cn), back(xn, 0.0);
    im2col(col.data(), g.OH() * g.OW(), x.data(), g);
    col2im(back.data(), c.data(), g.OH() * g.OW(), g);
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < cn; ++i) lhs += col[i] * c[i];
    for (int64_t i = 0; i < xn; ++i) rhs += x[i] * back[i];
    EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::abs(lhs)));
  }
}

// ---- pooling against naive loops -----------------------------------------------------------

namespace {

// Naive pooling straight from the definition: the padded input is -inf (max) or 0 (avg).
template <class T>
void naive_pool(const std::vector<T>& x, const PoolGeom& g, bool is_max, std::vector<T>& y,
                std::vector<int32_t>& arg) {
  const int64_t OH = g.OH(), OW = g.OW();
  y.assign(g.planes * OH * OW, T(0));
  arg.assign(y.size(), -1);
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        T best = -std::numeric_limits<T>::infinity(), sum = 0;
        int32_t best_i = -1;
        for (int64_t kh = 0; kh < g.K; ++kh)
          for (int64_t kw = 0; kw < g.K; ++kw) {
            const int64_t h = oh * g.stride - g.padding + kh, w = ow * g.stride - g.padding + kw;
            const bool inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
            const T v = inside ? x[(p * g.H + h) * g.W + w] : (is_max ? best : T(0));
            sum += v;
            if (inside && v > best) {
              best = v;
              best_i = static_cast<int32_t>(h * g.W + w);
            }
          }
        const int64_t o = (p * OH + oh) * OW + ow;
        y[o] = is_max ? best : sum / T(g.K * g.K);
        arg[o] = best_i;
      }
}

}  // namespace

TEST(PoolKernel, MatchesNaiveLoops) {
  Rng rng(15);
  for (int trial = 0; trial < 30; ++trial) {
    PoolGeom g;
    g.planes = 1 + rng.randint(4);
    g.K = 1 + rng.randint(4);
    g.stride = 1 + rng.randint(3);
    g.padding = rng.randint(g.K / 2 + 1);
    g.H = g.K + rng.randint(7);
    g.W = g.K + rng.randint(7);
    if (trial == 0) g = {600, 28, 28, 2, 2, 0};  // the CNN's pool, threaded
    const int64_t n = g.planes * g.H * g.W, m = g.planes * g.OH() * g.OW();
    const auto x = randn<double>(n, rng), dy = randn<double>(m, rng);
    std::vector<double> y(m), yn, dx(n), dxn(n, 0.0);
    std::vector<int32_t> arg(m), argn;

    naive_pool(x, g, true, yn, argn);
    max_pool2d_forward(y.data(), arg.data(), x.data(), g);
    EXPECT_EQ(y, yn) << "max trial " << trial;
    EXPECT_EQ(arg, argn) << "argmax trial " << trial;
    max_pool2d_backward(dx.data(), dy.data(), arg.data(), g);
    for (int64_t p = 0; p < g.planes; ++p)
      for (int64_t i = 0; i < g.OH() * g.OW(); ++i)
        dxn[p * g.H * g.W + argn[p * g.OH() * g.OW() + i]] += dy[p * g.OH() * g.OW() + i];
    EXPECT_LT(max_rel_diff(dx, dxn), 1e-14) << "max backward trial " << trial;

    naive_pool(x, g, false, yn, argn);
    avg_pool2d_forward(y.data(), x.data(), g);
    EXPECT_LT(max_rel_diff(y, yn), 1e-14) << "avg trial " << trial;
    // Avg backward: each output's gradient / K^2 spread over its window's inside positions.
    std::fill(dxn.begin(), dxn.end(), 0.0);
    for (int64_t p = 0; p < g.planes; ++p)
      for (int64_t oh = 0; oh < g.OH(); ++oh)
        for (int64_t ow = 0; ow < g.OW(); ++ow)
          for (int64_t kh = 0; kh < g.K; ++kh)
            for (int64_t kw = 0; kw < g.K; ++kw) {
              const int64_t h = oh * g.stride - g.padding + kh, w = ow * g.stride - g.padding + kw;
              if (h >= 0 && h < g.H && w >= 0 && w < g.W)
                dxn[(p * g.H + h) * g.W + w] += dy[(p * g.OH() + oh) * g.OW() + ow] / double(g.K * g.K);
            }
    avg_pool2d_backward(dx.data(), dy.data(), g);
    EXPECT_LT(max_rel_diff(dx, dxn), 1e-14) << "avg backward trial " << trial;
  }
}

TEST(PoolKernel, MaxTwoByTwoPathKeepsTheFirstOfTiesAndOddEdges) {
  // The 2x2 / stride 2 path: odd planes (the last row and column dropped), many ties (values
  // 0, 1, 2), against the naive loops' first maximum in row-major order.
  Rng rng(18);
  const PoolGeom g{5, 7, 9, 2, 2, 0};
  std::vector<float> x(5 * 7 * 9);
  for (auto& v : x) v = float(rng.randint(3));
  std::vector<float> y(5 * 3 * 4), yn;
  std::vector<int32_t> arg(y.size()), argn;
  naive_pool(x, g, true, yn, argn);
  max_pool2d_forward(y.data(), arg.data(), x.data(), g);
  EXPECT_EQ(y, yn);
  EXPECT_EQ(arg, argn);
}

TEST(PoolKernel, MaxPropagatesNan) {
  const PoolGeom g{1, 2, 2, 2, 2, 0};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x{1.f, nan, 3.f, 2.f};
  float y;
  int32_t arg;
  max_pool2d_forward(&y, &arg, x.data(), g);
  EXPECT_TRUE(std::isnan(y));
  EXPECT_EQ(arg, 1);
  // The general path (3x3 windows) and the 2x2 one agree: the last NaN of the window wins.
  const std::vector<float> x4{nan, 1.f, 2.f, nan};
  max_pool2d_forward(&y, &arg, x4.data(), g);
  EXPECT_TRUE(std::isnan(y));
  EXPECT_EQ(arg, 3);
  const PoolGeom g3{1, 2, 2, 3, 3, 1};
  max_pool2d_forward(&y, &arg, x4.data(), g3);
  EXPECT_TRUE(std::isnan(y));
  EXPECT_EQ(arg, 3);
}
