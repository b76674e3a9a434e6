// `focus bench attention`: time, GFLOP/s, % of the measured FMA peak and peak memory of the
// attention kernels (fused or reference) on this machine, forward or forward + backward. Each
// configuration is first verified: the chosen kernel against the other one on the same shapes
// cut to at most 256 positions, forward and gradients. Figures are medians of repeated runs.
//   FLOPs count visible (query, key) pairs only (a causal mask halves them): 4 D per pair
//   forward (Q K^T and P V), 10 D more backward (S again, dP, dV, dK, dQ), with D = Dv.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "focus/apps/commands.hpp"
#include "focus/autograd/node.hpp"
#include "focus/kernels/attention.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/ops/attention.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

struct AttnBenchOpts {
  int64_t batch = 4, heads = 8, kv_heads = 0, dim = 64;
  std::vector<int64_t> lens{128, 512, 1024, 2048};
  bool causal = false, backward = false, json = false;
  int64_t window = -1;
  std::string kernel = "fused";
  int threads = 0, reps = 0;
};

// Resident-set figures of this process (kB) from /proc/self/status.
int64_t proc_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size()));
  return 0;
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct Problem {
  Tensor q, k, v, dout;
  AttentionOptions opt;
};

Problem make_problem(const AttnBenchOpts& o, int64_t L, AttentionKernel kernel, Rng& rng) {
  const int64_t Hkv = o.kv_heads > 0 ? o.kv_heads : o.heads;
  Problem p;
  p.q = Tensor::randn({o.batch, o.heads, L, o.dim}, rng);  // (B, H, L, D)
  p.k = Tensor::randn({o.batch, Hkv, L, o.dim}, rng);      // (B, Hkv, L, D)
  p.v = Tensor::randn({o.batch, Hkv, L, o.dim}, rng);      // (B, Hkv, L, D)
  if (o.backward) {
    p.dout = Tensor::randn({o.batch, o.heads, L, o.dim}, rng);
    p.q.requires_grad_();
    p.k.requires_grad_();
    p.v.requires_grad_();
  }
  p.opt.causal = o.causal;
  p.opt.window_left = o.window;
  p.opt.kernel = kernel;
  return p;
}

// One forward (and backward) pass; returns the output.
Tensor step(Problem& p) {
  if (!p.dout.defined()) {
    NoGradGuard ng;
    return scaled_dot_product_attention(p.q, p.k, p.v, p.opt);
  }
  for (Tensor* t : {&p.q, &p.k, &p.v}) t->zero_grad();
  Tensor out = scaled_dot_product_attention(p.q, p.k, p.v, p.opt);
  out.backward(p.dout);
  return out;
}

void verify(const AttnBenchOpts& o, int64_t L, AttentionKernel kernel) {
  const int64_t Lv = std::min<int64_t>(L, 256);
  Rng r1(7), r2(7);
  Problem a = make_problem(o, Lv, kernel, r1);
  Problem b = make_problem(o, Lv, kernel == AttentionKernel::Fused ? AttentionKernel::Reference
                                                                    : AttentionKernel::Fused,
                           r2);
  auto check = [&](const Tensor& x, const Tensor& y, const char* what) {
    const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
    double diff = 0, mag = 1;
    for (size_t i = 0; i < xv.size(); ++i) {
      diff = std::max(diff, std::abs(xv[i] - yv[i]));
      mag = std::max(mag, std::abs(yv[i]));
    }
    const double e = diff / mag;
    FOCUS_CHECK(e < 1e-4, StateError,
                "bench attention: {} of the {} kernel differs from the other kernel by {} at L {}",
                what, o.kernel, e, Lv);
  };
  check(step(a), step(b), "output");
  if (o.backward) {
    check(a.q.grad(), b.q.grad(), "dq");
    check(a.k.grad(), b.k.grad(), "dk");
    check(a.v.grad(), b.v.grad(), "dv");
  }
}

// Visible (query, key) pairs of one head.
double visible_pairs(const AttnBenchOpts& o, int64_t L) {
  double n = 0;
  for (int64_t i = 0; i < L; ++i) {
    const int64_t hi = o.causal ? i + 1 : L;
    const int64_t lo = o.window >= 0 ? std::max<int64_t>(0, i - o.window) : 0;
    n += static_cast<double>(std::max<int64_t>(0, hi - lo));
  }
  return n;
}

int run_attention_bench(const AttnBenchOpts& o) {
  FOCUS_CHECK(o.batch > 0 && o.heads > 0 && o.dim > 0 && o.kv_heads >= 0, ValueError,
              "bench attention: sizes must be positive (batch {}, heads {}, dim {})", o.batch,
              o.heads, o.dim);
  FOCUS_CHECK(o.kv_heads == 0 || o.heads % o.kv_heads == 0, ValueError,
              "bench attention: --kv-heads {} must divide --heads {}", o.kv_heads, o.heads);
  for (int64_t L : o.lens) FOCUS_CHECK(L > 0, ValueError, "bench attention: --len {} <= 0", L);
  const AttentionKernel kernel =
      o.kernel == "reference" ? AttentionKernel::Reference : AttentionKernel::Fused;
  const double peak = measure_fma_peak_gflops();
  nlohmann::json out;
  out["kernel"] = o.kernel;
  out["isa"] = kernel == AttentionKernel::Fused ? attention_isa_name(attention_isa()) : "primitives";
  out["threads"] = num_threads();
  out["fma_peak_gflops"] = peak;
  out["batch"] = o.batch;
  out["heads"] = o.heads;
  out["kv_heads"] = o.kv_heads > 0 ? o.kv_heads : o.heads;
  out["dim"] = o.dim;
  out["causal"] = o.causal;
  out["window"] = o.window;
  out["backward"] = o.backward;
  if (!o.json)
    std::printf("attention %s [%s], %s, B %lld H %lld Hkv %lld D %lld%s%s; FMA peak %.1f GFLOP/s "
                "(%d threads)\n\n%8s %10s %10s %10s %8s %12s\n",
                o.kernel.c_str(), out["isa"].get<std::string>().c_str(),
                o.backward ? "forward + backward" : "forward", (long long)o.batch,
                (long long)o.heads, (long long)out["kv_heads"].get<int64_t>(), (long long)o.dim,
                o.causal ? ", causal" : "",
                o.window >= 0 ? fmt::format(", window {}", o.window).c_str() : "", peak,
                num_threads(), "L", "ms", "min ms", "GFLOP/s", "% peak", "peak MiB");
  for (int64_t L : o.lens) {
    verify(o, L, kernel);
    Rng rng(11);
    Problem p = make_problem(o, L, kernel, rng);
    const double flops =
        visible_pairs(o, L) * o.batch * o.heads * o.dim * (o.backward ? 14.0 : 4.0);
    const int n = o.reps > 0 ? o.reps : std::clamp(static_cast<int>(3e10 / flops), 3, 50);
    step(p);  // warm-up; inputs and gradients are resident from here on
    const int64_t base_kb = proc_kb("VmRSS");
    reset_peak_rss();
    std::vector<double> times;
    for (int r = 0; r < n; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      step(p);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double extra_mib = std::max<int64_t>(0, proc_kb("VmHWM") - base_kb) / 1024.0;
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2], gflops = flops / med / 1e9;
    out["results"].push_back({{"len", L},
                              {"median_ms", med * 1e3},
                              {"min_ms", times.front() * 1e3},
                              {"gflops", gflops},
                              {"pct_peak", 100 * gflops / peak},
                              {"peak_extra_mib", extra_mib},
                              {"reps", n}});
    if (!o.json)
      std::printf("%8lld %10.2f %10.2f %10.1f %7.1f%% %12.1f\n", (long long)L, med * 1e3,
                  times.front() * 1e3, gflops,
                  100 * gflops / peak, extra_mib);
  }
  if (o.json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace

Command add_bench_attention_command(CLI::App& bench) {
  CLI::App* a = bench.add_subcommand(
      "attention", "attention kernels: time, GFLOP/s, % of FMA peak, peak memory");
  auto o = std::make_shared<AttnBenchOpts>();
  a->add_option("--batch", o->batch, "batch size")->capture_default_str();
  a->add_option("--heads", o->heads, "query heads")->capture_default_str();
  a->add_option("--kv-heads", o->kv_heads, "key/value heads (0 = heads; fewer = GQA)");
  a->add_option("--dim", o->dim, "head dim")->capture_default_str();
  a->add_option("--len", o->lens, "sequence lengths (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  a->add_flag("--causal", o->causal, "causal mask");
  a->add_option("--window", o->window, "sliding window: keys i - W .. i (-1 = none)");
  a->add_flag("--backward", o->backward, "forward + backward");
  a->add_option("--kernel", o->kernel, "fused | reference")
      ->check(CLI::IsMember({"fused", "reference"}))
      ->capture_default_str();
  a->add_option("--threads", o->threads, "threads (0 = policy)");
  a->add_option("--reps", o->reps, "timed repetitions (0 = by size)");
  a->add_flag("--json", o->json,
              "print JSON: kernel, isa, threads, fma_peak_gflops, sizes, and per length: len, "
              "median_ms, min_ms, gflops (at the median), pct_peak, peak_extra_mib (resident memory beyond inputs, "
              "outputs and gradients), reps");
  return [o, a] {
    if (!a->parsed()) return -1;
    if (o->threads > 0) set_num_threads(o->threads);
    return run_attention_bench(*o);
  };
}

}  // namespace focus
