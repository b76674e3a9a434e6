// `focus bench gemm` (and the `bench` group; `bench attention` is in cmd_bench_attention.cpp): the engine's matmul GFLOP/s at chosen shapes next to the machine's measured
// FMA peak, so a user sees at once whether the fast kernels are in use. Each shape is verified
// against the reference kernel on sampled entries before it is timed; the figure is the median of
// repeated runs. `--kernel panels-f32|panels-bf16` times the packed-panel kernel of inference
// weights (kernels/panel_gemm.hpp) on A (M, K) @ B (N, K)^T instead, B packed once before timing.
// `--precision bf16` times gemm() at bf16 precision (kernels/precision.hpp: inputs rounded and
// converted on every call, F32 accumulation), verified against the double product of the rounded
// inputs, its % of peak against twice the FMA peak (a bf16 dot-product instruction does two
// multiply-adds per F32 lane).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "focus/apps/commands.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/panel_gemm.hpp"
#include "focus/kernels/precision.hpp"
#include "focus/kernels/qgemm.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

struct GemmShape {
  int64_t M, N, K;
};

// "2048" -> 2048^3; "1024x64x1024" -> M x N x K.
GemmShape parse_shape(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, 'x')) {
    try {
      size_t used = 0;
      v.push_back(std::stoll(part, &used));
      FOCUS_CHECK(used == part.size(), ValueError, "bad size '{}' in --sizes", s);
    } catch (const std::logic_error&) {
      throw ValueError(fmt::format("bad size '{}' in --sizes (use N or MxNxK)", s));
    }
  }
  FOCUS_CHECK((v.size() == 1 || v.size() == 3) && std::all_of(v.begin(), v.end(), [](int64_t x) {
                return x > 0;
              }),
              ValueError, "bad size '{}' in --sizes (use N or MxNxK, positive)", s);
  return v.size() == 1 ? GemmShape{v[0], v[0], v[0]} : GemmShape{v[0], v[1], v[2]};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The product being timed: the GEMM, the packed-panel kernel (panels: "f32" or "bf16"), or the
// int8 product (panels "int8": B quantised per row and packed once, A quantised per row on every
// call, as a Linear at inference; kernels/qgemm.hpp).
struct Product {
  std::string panels;  // empty: gemm()
  std::vector<float> P;
  std::vector<BFloat16> Pb;
  QWeight Q;
  void prepare(const GemmShape& g, std::vector<float>& B) {
    if (panels.empty()) return;
    if (panels == "int8") {
      Q = pack_qweight(B.data(), g.N, g.K);
      return;
    }
    const size_t n = static_cast<size_t>(panel_count(g.N) * g.K * kPanelRows);
    if (panels == "bf16") {
      Pb.resize(n);
      pack_panels<BFloat16>(g.N, g.K, B.data(), g.K, Pb.data());
      for (auto& b : B) b = static_cast<float>(BFloat16(b));  // the values the kernel multiplies
    } else {
      P.resize(n);
      pack_panels<float>(g.N, g.K, B.data(), g.K, P.data());
    }
  }
  void run(const GemmShape& g, bool ta, bool tb, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C) const {
    if (panels == "int8")
      qlinear_forward(C, g.N, A, lda, g.M, Q, nullptr);
    else if (panels == "bf16")
      gemm_panels<BFloat16>(g.M, g.N, g.K, 1.f, A, lda, Pb.data(), 0.f, C, g.N);
    else if (panels == "f32")
      gemm_panels<float>(g.M, g.N, g.K, 1.f, A, lda, P.data(), 0.f, C, g.N);
    else
      gemm(ta, tb, g.M, g.N, g.K, 1.f, A, lda, B, ldb, 0.f, C, g.N);
  }
};

int run_gemm_bench(const std::vector<std::string>& sizes, bool json, int reps, bool ta, bool tb,
                   const std::string& panels) {
  FOCUS_CHECK(panels.empty() || (!ta && tb), ValueError,
              "bench gemm: the panel kernels compute A @ B^T: use --trans nt");
  const bool bf16 = compute_precision() == Precision::Bf16;
  FOCUS_CHECK(!bf16 || panels.empty(), ValueError, "bench gemm: --precision bf16 times gemm(), not --kernel {}",
              panels == "int8" ? "int8" : "panels-" + panels);
  for (const std::string& s : sizes) parse_shape(s);  // reject bad input before measuring
  const double peak = measure_fma_peak_gflops() * (bf16 ? 2 : 1);
  nlohmann::json out;
  out["backend"] = gemm_backend_info();
  out["threads"] = num_threads();
  out["isa"] = isa_name(detect_isa());
  out["fma_peak_gflops"] = peak;
  out["precision"] = precision_name(compute_precision());
  out["trans"] = std::string(ta ? "t" : "n") + (tb ? "t" : "n");
  out["kernel"] = panels.empty() ? std::string("gemm") : panels == "int8" ? std::string("int8") : "panels-" + panels;
  if (panels == "int8") out["int8_path"] = qpath_name(qgemm_path());
  if (!json)
    std::printf("backend: %s\n%s: %.1f GFLOP/s (%d threads, %s)\n\n%-18s %10s %10s %8s\n",
                gemm_backend_info().c_str(), bf16 ? "bf16 peak, twice the measured FMA peak" : "measured FMA peak",
                peak, num_threads(), isa_name(detect_isa()).c_str(),
                "M x N x K", "ms", "GFLOP/s", "% peak");
  Rng rng(42);
  for (const std::string& s : sizes) {
    const GemmShape g = parse_shape(s);
    std::vector<float> A(g.M * g.K), B(g.K * g.N), C(g.M * g.N);
    const int64_t lda = ta ? g.M : g.K, ldb = tb ? g.K : g.N;  // A (M, K) or (K, M); B (K, N) or (N, K)
    rng.fill_normal(A.data(), int64_t(A.size()), 0.f, 1.f);
    rng.fill_normal(B.data(), int64_t(B.size()), 0.f, 1.f);
    Product product{panels, {}, {}, {}};
    product.prepare(g, B);
    product.run(g, ta, tb, A.data(), lda, B.data(), ldb, C.data());
    // Verify sampled entries against a double-precision dot product (at bf16, of the inputs
    // rounded as the product rounds them).
    auto in = [bf16](float x) {
      if (bf16) round_to_bf16(&x, &x, 1);
      return double(x);
    };
    for (int t = 0; t < 64; ++t) {
      const int64_t i = rng.randint(g.M), j = rng.randint(g.N);
      double ref = 0;
      for (int64_t k = 0; k < g.K; ++k)
        ref += in(ta ? A[k * lda + i] : A[i * lda + k]) * in(tb ? B[j * ldb + k] : B[k * ldb + j]);
      // int8: within quantisation error (|dot| ~ sqrt(K) for these normal values).
      const double tol = panels == "int8" ? 0.1 * std::sqrt(double(g.K))
                                          : 1e-3 * std::sqrt(double(g.K)) + 1e-4 * std::abs(ref);
      FOCUS_CHECK(std::abs(ref - C[i * g.N + j]) <= tol,
                  StateError, "bench gemm: result check failed at ({}, {}) for {}: {} vs {}", i, j,
                  s, C[i * g.N + j], ref);
    }
    const double flops = 2.0 * g.M * g.N * g.K;
    const int n = reps > 0 ? reps : std::clamp(int(2e10 / flops), 3, 200);
    std::vector<double> times;
    for (int r = 0; r < n; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      product.run(g, ta, tb, A.data(), lda, B.data(), ldb, C.data());
      times.push_back(seconds_since(t0));
    }
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2], gflops = flops / med / 1e9;
    out["results"].push_back({{"M", g.M}, {"N", g.N}, {"K", g.K}, {"median_ms", med * 1e3},
                              {"gflops", gflops}, {"pct_peak", 100 * gflops / peak}, {"reps", n}});
    if (!json)
      std::printf("%-18s %10.3f %10.1f %7.1f%%\n",
                  fmt::format("{}x{}x{}", g.M, g.N, g.K).c_str(), med * 1e3, gflops,
                  100 * gflops / peak);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks on this machine");
  bench->require_subcommand(1);
  CLI::App* g = bench->add_subcommand("gemm", "matmul GFLOP/s next to the measured FMA peak");
  struct Opts {
    std::vector<std::string> sizes{"64", "256", "1024", "2048", "1024x1024x64", "1024x64x1024",
                                   "6272x128x1152"};
    bool json = false;
    int threads = 0, reps = 0;
    std::string kernel = "auto", trans = "nn", precision = "f32";
  };
  auto o = std::make_shared<Opts>();
  g->add_option("--sizes", o->sizes, "shapes: N (square) or MxNxK")->delimiter(',')->capture_default_str();
  g->add_flag("--json", o->json, "print JSON");
  g->add_option("--threads", o->threads, "threads (0 = policy)");
  g->add_option("--reps", o->reps, "timed repetitions (0 = by size)");
  g->add_option("--kernel", o->kernel,
                "auto | blas | small | reference | panels-f32 | panels-bf16 (packed inference "
                "weights, --trans nt) | int8 (int8 weights, dynamic int8 rows, --trans nt: "
                "GOPS in the GFLOP/s column)")
      ->check(CLI::IsMember({"auto", "blas", "onednn", "small", "reference", "panels-f32", "panels-bf16", "int8"}));
  g->add_option("--trans", o->trans, "nn | nt | tn | tt: op(A) op(B) (t = stored transposed)")
      ->check(CLI::IsMember({"nn", "nt", "tn", "tt"}))
      ->capture_default_str();
  g->add_option("--precision", o->precision,
                "f32 | bf16: gemm() at bf16 precision (needs AVX512-BF16 or AMX)")
      ->capture_default_str();
  Command attention = add_bench_attention_command(*bench);
  Command infer = add_bench_infer_command(*bench);
  Command text = add_bench_text_command(*bench);
  return [o, g, attention, infer, text] {
    if (!g->parsed()) {
      int rc = infer();
      if (rc == -1) rc = text();
      return rc != -1 ? rc : attention();
    }
    if (o->threads > 0) set_num_threads(o->threads);
    set_compute_precision(supported_precision(o->precision));
    set_gemm_kernel(o->kernel == "blas"      ? GemmKernel::Blas
                    : o->kernel == "onednn"  ? GemmKernel::OneDnn
                    : o->kernel == "small"   ? GemmKernel::Small
                    : o->kernel == "reference" ? GemmKernel::Reference
                                             : GemmKernel::Auto);
    const std::string panels = o->kernel.rfind("panels-", 0) == 0 ? o->kernel.substr(7)
                               : o->kernel == "int8"                ? "int8"
                                                                    : "";
    return run_gemm_bench(o->sizes, o->json, o->reps, o->trans[0] == 't', o->trans[1] == 't',
                          panels);
  };
}

}  // namespace focus
