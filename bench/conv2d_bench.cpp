// conv2d kernel timings at the layer shapes of cnn_se (batch 128 by default, 3x3, padding 1), F32:
// forward and backward (dx, dw) in ms and GFLOP/s (direct-convolution FLOPs, for every kernel)
// for four choices, run interleaved call by call so that the load of a shared machine hits them
// alike: im2col with images grouped into ~512-column GEMMs (kernels/conv_gemm), oneDNN's
// convolution primitives with the direct algorithm and with Winograd for every pass
// (kernels/conv_onednn), and the default choice (kernels/conv.hpp). Verifies each first: forward and every gradient against the
// direct reference kernel on 2 images of each shape. Medians (FOCUS_BENCH_BEST=1: minima, the
// least disturbed calls) and the mean CPU time per call.
// Run: ./build/conv2d_bench [batch] [reps]   (FOCUS_NUM_THREADS=1 for one thread)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <utility>
#include <vector>

#include "focus/kernels/conv.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

// Milliseconds of the process's CPU time (all threads).
static double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// One way of running conv2d: the kernel and the GEMM under im2col.
struct Variant {
  const char* name;
  ConvKernel conv;
  GemmKernel gemm;
};
const Variant kVariants[] = {{"im2col", ConvKernel::Im2col, GemmKernel::Auto},
                             {"oneDNN direct", ConvKernel::OneDnn, GemmKernel::Auto},
                             {"oneDNN Winograd", ConvKernel::Winograd, GemmKernel::Auto},
                             {"default", ConvKernel::Auto, GemmKernel::Auto}};
constexpr int kNumVariants = 4;

// Wall ms of each call, per variant.
struct Times {
  std::vector<double> wall[kNumVariants];
  double cpu[kNumVariants] = {};
  double pick(int v, bool best) {
    auto t = wall[v];
    std::sort(t.begin(), t.end());
    return t[best ? 0 : t.size() / 2];
  }
};

static double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, s = 1;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, (double)std::abs(a[i] - b[i])), s = std::max(s, (double)std::abs(b[i]));
  return m / s;
}

static std::vector<float> randn(size_t n, Rng& rng) {
  std::vector<float> v(n);
  rng.fill_normal(v.data(), v.size(), 0.f, 1.f);
  return v;
}

// Forward and backward on 2 images against the reference; returns the largest relative error.
static double verify(ConvGeom g, Rng& rng) {
  g.N = 2;
  const int64_t xn = g.N * g.C * g.H * g.W, wn = g.O * g.C * 9, yn = g.N * g.O * g.OH() * g.OW();
  const auto x = randn(xn, rng), w = randn(wn, rng), dy = randn(yn, rng);
  std::vector<float> y(yn), yr(yn), dx(xn), dxr(xn), dw(wn), dwr(wn);
  conv2d_forward(y.data(), x.data(), w.data(), static_cast<const float*>(nullptr), g);
  conv2d_forward_reference(yr.data(), x.data(), w.data(), static_cast<const float*>(nullptr), g);
  conv2d_backward(dx.data(), dw.data(), static_cast<float*>(nullptr), dy.data(), x.data(), w.data(), g);
  conv2d_backward_reference(dxr.data(), dwr.data(), static_cast<float*>(nullptr), dy.data(),
                            x.data(), w.data(), g);
  return std::max({rel_diff(y, yr), rel_diff(dx, dxr), rel_diff(dw, dwr)});
}

int main(int argc, char** argv) {
  ensure_passive_omp_wait(argv);
  const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 128;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  const bool best = std::getenv("FOCUS_BENCH_BEST") != nullptr;
  std::printf("FMA peak now: %.0f GFLOP/s on 1 thread\n", measure_fma_peak_gflops(1, 0.2));
  std::printf("%s, %d threads, batch %ld, %s of %d interleaved rounds\n",
              gemm_backend_info().c_str(), num_threads(), (long)batch, best ? "minimum" : "median",
              reps);
  const int64_t layers[][3] = {{1, 32, 28},  {32, 32, 28}, {32, 64, 14},
                               {64, 64, 14}, {64, 128, 7}, {128, 128, 7}};
  double tot[kNumVariants][2] = {};
  for (auto& l : layers) {
    const ConvGeom g{batch, l[0], l[2], l[2], l[1], 3, 3, 1, 1};
    Rng rng(1);
    const int64_t xn = g.N * g.C * g.H * g.W, wn = g.O * g.C * 9, yn = g.N * g.O * g.OH() * g.OW();
    const auto x = randn(xn, rng), w = randn(wn, rng), dy = randn(yn, rng);
    std::vector<float> y(yn), dx(xn), dw(wn);
    const float* nob = nullptr;
    float* dxp = g.C == 1 ? nullptr : dx.data();  // the first layer's input needs no gradient
    Times fwd, bwd;
    for (int r = -1; r < reps; ++r)  // round -1: verification and warm-up
      for (int v = 0; v < kNumVariants; ++v) {
        set_conv_kernel(kVariants[v].conv);
        set_gemm_kernel(kVariants[v].gemm);
        if (r < 0) {
          const double err = verify(g, rng);
          if (err > 1e-4) {
            std::printf("%s: conv2d differs from the reference: %.2e\n", kVariants[v].name, err);
            return 1;
          }
        }
        for (int pass = 0; pass < 2; ++pass) {
          const auto t0 = std::chrono::steady_clock::now();
          const double c0 = cpu_ms();
          if (pass == 0) conv2d_forward(y.data(), x.data(), w.data(), nob, g);
          else conv2d_backward(dxp, dw.data(), static_cast<float*>(nullptr), dy.data(), x.data(), w.data(), g);
          if (r < 0) continue;
          Times& t = pass == 0 ? fwd : bwd;
          t.wall[v].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
          t.cpu[v] += (cpu_ms() - c0) / reps;
        }
      }
    const double gf = 2.0 * g.N * g.O * g.OH() * g.OW() * g.C * 9 * 1e-6;  // GFLOP * 1000
    std::printf("conv3x3 %ld->%ld at %ldx%ld (forward %.2f GFLOP):\n", (long)g.C, (long)g.O,
                (long)g.H, (long)g.W, gf * 1e-3);
    for (int v = 0; v < kNumVariants; ++v) {
      const double tf = fwd.pick(v, best), tb = bwd.pick(v, best);
      std::printf("  %-20s fwd %7.2f ms (%5.1f GF/s, cpu %7.2f)  bwd %7.2f ms (%5.1f GF/s, cpu %7.2f)\n",
                  kVariants[v].name, tf, gf / tf, fwd.cpu[v], tb, (dxp ? 2 : 1) * gf / tb, bwd.cpu[v]);
      tot[v][0] += tf, tot[v][1] += tb;
    }
  }
  for (int v = 0; v < kNumVariants; ++v)
    std::printf("total %-20s fwd %7.1f ms  bwd %7.1f ms  fwd+bwd %7.1f ms\n", kVariants[v].name,
                tot[v][0], tot[v][1], tot[v][0] + tot[v][1]);
}
