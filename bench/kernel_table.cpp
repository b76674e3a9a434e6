// kernel_table: GEMM and convolution GFLOP/s by shape for OpenBLAS, oneDNN and focus's own
// kernels, each as a share of the FMA peak measured on the spot (issue 21's table and the choice
// made for each shape; docs/BENCHMARKS.md "Kernel table").
//   GEMM  C (M, N) = A (M, K) @ B (K, N), row-major F32: OpenBLAS sgemm (focus's gemm_blas),
//         focus's blocked AVX-512 convolution GEMM (conv_gemm; AVX2 machines fall back to the
//         BLAS inside it), oneDNN matmul (its own blocking, B as given), oneDNN's dnnl_sgemm
//         (focus's gemm_onednn: what gemm() runs for F32 where oneDNN runs).
//   conv  3x3, stride 1, padding 1, F32, cnn_se's six shapes at batch 1 and 256: focus's im2col +
//         GEMM conv2d (kernels/conv), oneDNN with NCHW tensors (what focus's autograd holds) and
//         with NHWC (what the compiled plan, infer/image_plan, keeps between layers); weights in
//         the layout oneDNN picks, reordered before timing.
//   bf16  where the CPU has bf16 units: focus's gemm() and conv2d at bf16 precision
//         (kernels/precision.hpp: oneDNN's bf16 matmul / direct convolution, the inputs converted
//         on every call, F32 accumulation), verified against the double product of the rounded
//         inputs, as a share of twice the FMA peak (a bf16 dot-product instruction does two
//         multiply-adds per F32 lane); a column of its own, outside the F32 choice.
// Verify first: every engine's output against a double-precision reference on 64 sampled entries
// (tolerance 1e-3 sqrt(K) + 1e-4 |ref|); then the median of repeated calls, engines interleaved
// call by call so that drifts in load hit all alike.
// Usage: kernel_table [--quick] [--json]   (threads: the policy, FOCUS_NUM_THREADS)
#include <CLI/CLI.hpp>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "focus/kernels/conv.hpp"
#include "focus/kernels/conv_gemm.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/kernels/precision.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Each engine is called in turn, round after round; returns each one's median seconds.
std::vector<double> interleaved(const std::vector<std::function<void()>>& fs, double flops, bool quick) {
  const int reps = std::clamp(int((quick ? 3e9 : 1.5e10) / flops), 3, 200);
  std::vector<std::vector<double>> t(fs.size());
  for (auto& f : fs) f();  // warm-up
  for (int r = 0; r < reps; ++r)
    for (size_t e = 0; e < fs.size(); ++e) {
      const auto t0 = std::chrono::steady_clock::now();
      fs[e]();
      t[e].push_back(seconds_since(t0));
    }
  std::vector<double> med;
  for (auto& v : t) {
    std::sort(v.begin(), v.end());
    med.push_back(v[v.size() / 2]);
  }
  return med;
}

double bf16(float x) {
  round_to_bf16(&x, &x, 1);
  return x;
}

void check_close(double got, double ref, double K, const std::string& what) {
  FOCUS_CHECK(std::abs(got - ref) <= 1e-3 * std::sqrt(K) + 1e-4 * std::abs(ref), StateError,
              "kernel_table: {}: {} vs reference {}", what, got, ref);
}

struct Dnnl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream s{eng};
};

nlohmann::json gemm_row(Dnnl& d, int64_t M, int64_t N, int64_t K, double peak, bool quick, Rng& rng) {
  std::vector<float> A(size_t(M * K)), B(size_t(K * N)), C1(size_t(M * N)), C2(C1.size()),
      C3(C1.size()), C4(C1.size());
  rng.fill_normal(A.data(), M * K, 0.f, 1.f);
  rng.fill_normal(B.data(), K * N, 0.f, 1.f);
  dnnl::memory::desc ad({M, K}, dt::f32, tag::ab), bd({K, N}, dt::f32, tag::ab), cd({M, N}, dt::f32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), d.eng);
  dnnl::matmul mm(pd);
  dnnl::memory am(ad, d.eng, A.data()), bm(bd, d.eng, B.data()), cm(cd, d.eng, C3.data());
  const std::vector<std::function<void()>> fs = {
      [&] { gemm_blas<float>(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C1.data(), N); },
      [&] { conv_gemm<float>(false, false, M, N, K, A.data(), K, B.data(), N, 0.f, C2.data(), N); },
      [&] {
        mm.execute(d.s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
        d.s.wait();
      },
      [&] { gemm_onednn(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C4.data(), N); }};
  std::vector<std::function<void()>> all = fs;
  std::vector<float> C5(C1.size());
  const bool with_bf16 = bf16_hardware();
  if (with_bf16)
    all.push_back([&] {
      const ScopedPrecision p(Precision::Bf16);
      gemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C5.data(), N);
    });
  for (auto& f : all) f();
  for (int t = 0; t < 64; ++t) {
    const int64_t i = rng.randint(M), j = rng.randint(N);
    double ref = 0, ref16 = 0;
    for (int64_t k = 0; k < K; ++k) {
      ref += double(A[size_t(i * K + k)]) * B[size_t(k * N + j)];
      ref16 += bf16(A[size_t(i * K + k)]) * bf16(B[size_t(k * N + j)]);
    }
    const size_t at = size_t(i * N + j);
    check_close(C1[at], ref, double(K), "OpenBLAS gemm");
    check_close(C2[at], ref, double(K), "focus conv_gemm");
    check_close(C3[at], ref, double(K), "oneDNN matmul");
    check_close(C4[at], ref, double(K), "oneDNN sgemm");
    if (with_bf16) check_close(C5[at], ref16, double(K), "focus gemm at bf16");
  }
  const double flops = 2.0 * M * N * K;
  const std::vector<double> t = interleaved(all, flops, quick);
  nlohmann::json row = {{"kind", "gemm"}, {"shape", fmt::format("{}x{}x{}", M, N, K)},
                        {"gflops", {{"openblas", flops / t[0] / 1e9}, {"focus", flops / t[1] / 1e9},
                                    {"onednn", flops / t[2] / 1e9}, {"onednn_sgemm", flops / t[3] / 1e9}}},
                        {"peak", peak}};
  if (with_bf16) row["bf16_gflops"] = flops / t[4] / 1e9;
  return row;
}

// oneDNN conv with src / dst in `layout` (nchw or nhwc); x and y in NCHW, reordered outside the
// timed call (the layout is what a caller keeps between layers).
struct DnnlConv {
  dnnl::convolution_forward prim;
  dnnl::memory src, wei, dst;
  DnnlConv(Dnnl& d, const ConvGeom& g, tag layout, const std::vector<float>& x,
           const std::vector<float>& w) {
    const dnnl::memory::desc sd({g.N, g.C, g.H, g.W}, dt::f32, layout),
        dd({g.N, g.O, g.OH(), g.OW()}, dt::f32, layout);
    const dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                        dnnl::algorithm::convolution_direct, sd,
                                        dnnl::memory::desc({g.O, g.C, g.KH, g.KW}, dt::f32, tag::any),
                                        dd, {g.stride, g.stride}, {g.padding, g.padding},
                                        {g.padding, g.padding}),
        d.eng);
    prim = dnnl::convolution_forward(pd);
    src = dnnl::memory(sd, d.eng);
    dst = dnnl::memory(dd, d.eng);
    wei = dnnl::memory(pd.weights_desc(), d.eng);
    dnnl::memory xs({{g.N, g.C, g.H, g.W}, dt::f32, tag::nchw}, d.eng, const_cast<float*>(x.data()));
    dnnl::memory ws({{g.O, g.C, g.KH, g.KW}, dt::f32, tag::oihw}, d.eng, const_cast<float*>(w.data()));
    dnnl::reorder(xs, src).execute(d.s, xs, src);
    dnnl::reorder(ws, wei).execute(d.s, ws, wei);
    d.s.wait();
  }
  void run(Dnnl& d) {
    prim.execute(d.s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    d.s.wait();
  }
  std::vector<float> nchw(Dnnl& d, const ConvGeom& g) {
    std::vector<float> y(size_t(g.N * g.O * g.OH() * g.OW()));
    dnnl::memory ys({{g.N, g.O, g.OH(), g.OW()}, dt::f32, tag::nchw}, d.eng, y.data());
    dnnl::reorder(dst, ys).execute(d.s, dst, ys);
    d.s.wait();
    return y;
  }
};

nlohmann::json conv_row(Dnnl& d, const ConvGeom& g, double peak, bool quick, Rng& rng) {
  std::vector<float> x(size_t(g.N * g.C * g.H * g.W)), w(size_t(g.O * g.C * 9)),
      y(size_t(g.N * g.O * g.OH() * g.OW()));
  rng.fill_normal(x.data(), int64_t(x.size()), 0.f, 1.f);
  rng.fill_normal(w.data(), int64_t(w.size()), 0.f, 1.f);
  DnnlConv plain(d, g, tag::nchw, x, w), nhwc(d, g, tag::nhwc, x, w);
  const std::vector<std::function<void()>> fs = {
      [&] { conv2d_forward<float>(y.data(), x.data(), w.data(), nullptr, g); },
      [&] { plain.run(d); },
      [&] { nhwc.run(d); }};
  std::vector<std::function<void()>> all = fs;
  std::vector<float> y5(y.size());
  const bool with_bf16 = bf16_hardware();
  if (with_bf16)
    all.push_back([&] {
      const ScopedPrecision p(Precision::Bf16);
      conv2d_forward<float>(y5.data(), x.data(), w.data(), nullptr, g);
    });
  for (auto& f : all) f();
  const std::vector<float> y2 = plain.nchw(d, g), y3 = nhwc.nchw(d, g);
  const int64_t OH = g.OH(), OW = g.OW(), K = g.C * 9;
  for (int t = 0; t < 64; ++t) {
    const int64_t n = rng.randint(g.N), o = rng.randint(g.O), i = rng.randint(OH), j = rng.randint(OW);
    double ref = 0, ref16 = 0;
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t a = 0; a < 3; ++a)
        for (int64_t b = 0; b < 3; ++b) {
          const int64_t h = i + a - 1, v = j + b - 1;
          if (h < 0 || h >= g.H || v < 0 || v >= g.W) continue;
          const float xv = x[size_t(((n * g.C + c) * g.H + h) * g.W + v)],
                      wv = w[size_t(((o * g.C + c) * 3 + a) * 3 + b)];
          ref += double(xv) * wv;
          ref16 += bf16(xv) * bf16(wv);
        }
    const size_t at = size_t(((n * g.O + o) * OH + i) * OW + j);
    check_close(y[at], ref, double(K), "focus conv2d");
    check_close(y2[at], ref, double(K), "oneDNN conv nchw");
    check_close(y3[at], ref, double(K), "oneDNN conv nhwc");
    if (with_bf16) check_close(y5[at], ref16, double(K), "focus conv2d at bf16");
  }
  const double flops = 2.0 * g.N * g.O * OH * OW * K;
  const std::vector<double> t = interleaved(all, flops, quick);
  nlohmann::json row = {{"kind", "conv"},
                        {"shape", fmt::format("N{} {}->{} {}x{}", g.N, g.C, g.O, g.H, g.W)},
                        {"gflops", {{"focus", flops / t[0] / 1e9}, {"onednn_nchw", flops / t[1] / 1e9},
                                    {"onednn_nhwc", flops / t[2] / 1e9}}},
                        {"peak", peak}};
  if (with_bf16) row["bf16_gflops"] = flops / t[3] / 1e9;
  return row;
}

}  // namespace
}  // namespace focus

int main(int argc, char** argv) {
  using namespace focus;
  ensure_passive_omp_wait(argv);
  CLI::App app{"GEMM and convolution GFLOP/s: OpenBLAS, oneDNN, focus"};
  bool quick = false, json = false;
  app.add_flag("--quick", quick, "fewer repetitions");
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    onednn_init();  // FOCUS_FORCE_ISA's cap before the first JIT kernel
    Dnnl d;
    Rng rng(7);
    const double peak = measure_fma_peak_gflops();
    nlohmann::json rows = nlohmann::json::array();
    const int64_t gemms[][3] = {{2048, 2048, 2048}, {1024, 1024, 64}, {6400, 128, 64},
                                {6272, 128, 1152}, {784, 32, 288},   {50, 192, 64},
                                {2048, 256, 256},  {2048, 1024, 256}, {2048, 256, 1024}};  // g2p
    for (auto& s : gemms) rows.push_back(gemm_row(d, s[0], s[1], s[2], peak, quick, rng));
    const int64_t convs[][3] = {{1, 28, 32}, {32, 28, 32}, {32, 14, 64}, {64, 14, 64}, {64, 7, 128}, {128, 7, 128}};
    for (int64_t n : {int64_t(1), int64_t(256)})
      for (auto& c : convs)
        rows.push_back(conv_row(d, ConvGeom{n, c[0], c[1], c[1], c[2], 3, 3, 1, 1}, peak, quick, rng));
    if (json) {
      std::printf("%s\n", nlohmann::json{{"fma_peak_gflops", peak}, {"threads", num_threads()},
                                          {"isa", isa_name(active_isa())}, {"rows", rows}}.dump(2).c_str());
      return 0;
    }
    std::printf("measured FMA peak %.0f GFLOP/s (%d threads, %s); GFLOP/s (%% of peak)\n\n", peak,
                num_threads(), isa_name(active_isa()).c_str());
    const bool with_bf16 = bf16_hardware();
    std::printf("| kind | shape | engines (F32) | best F32 |%s\n|---|---|---|---|%s\n",
                with_bf16 ? " focus at bf16 (% of 2x peak), x best F32 |" : "", with_bf16 ? "---|" : "");
    for (const auto& r : rows) {
      std::string cells, best;
      double top = 0;
      for (const auto& [name, v] : r["gflops"].items()) {
        const double g = v.get<double>();
        cells += fmt::format("{} {:.0f} ({:.0f}%); ", name, g, 100 * g / peak);
        if (g > top) top = g, best = name;
      }
      const std::string b16 =
          r.contains("bf16_gflops")
              ? fmt::format(" {:.0f} ({:.0f}%), {:.2f}x |", r["bf16_gflops"].get<double>(),
                            50 * r["bf16_gflops"].get<double>() / peak, r["bf16_gflops"].get<double>() / top)
              : "";
      std::printf("| %s | %s | %s | %s |%s\n", r["kind"].get<std::string>().c_str(),
                  r["shape"].get<std::string>().c_str(), cells.c_str(), best.c_str(), b16.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_table: %s\n", e.what());
    return 1;
  }
}
