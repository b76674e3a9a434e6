// decode_bench: autoregressive generation throughput of a decoder-only LM (models/decoder_lm),
// with the KV cache (DecoderLM::generate) and with full recomputation every step
// (generate_uncached). bench/decode_torch.py is its PyTorch twin (a hand-written KV cache) and
// bench/compare_decode.py runs the two in turns.
//   model:  vocab 8000, d_model 256, 4 layers, 4 heads, d_ff 1024, learned positions (defaults).
//   task:   a random --prompt (16) token prompt per sequence, then --new (256) greedy tokens, at
//           each --batch (1,16). tokens/s = batch * new / seconds of one whole generate() call
//           (prefill included), median of --reps calls (--uncached-reps for the slow path).
// Verify first, time second: for every batch the cached and uncached generations of the first
// --verify (32) tokens must agree exactly (greedy), and cached generation must be deterministic.
// The timed uncached run's tokens are compared with the cached ones too (reported: greedy ties
// may flip after many steps, as float sums differ in order).
// --weights bf16 runs with bf16 inference weights (Module::set_inference_dtype: half the bytes a
// step streams); the F32 generation of the same prompt is made first and the leading tokens on
// which the two agree are reported (random weights give near-tied logits, so this is a floor).
// Limits: random weights and prompts (throughput does not depend on them), F32 activations and KV
// cache, eval mode.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "focus/autograd/node.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/models/decoder_lm.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

double seconds(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<double> timed(const std::function<void()>& fn, int reps) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(seconds(fn));
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void check(bool ok, const std::string& what) {
  if (!ok) throw StateError("decode_bench: verification failed: " + what);
}

// Leading tokens on which two (B, N) generations agree, the minimum over sequences.
int64_t agreeing_prefix(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<int64_t>(), y = b.to_vector<int64_t>();
  const int64_t B = a.size(0), N = a.size(1);
  int64_t m = N;
  for (int64_t i = 0; i < B; ++i) {
    int64_t j = 0;
    while (j < N && x[i * N + j] == y[i * N + j]) ++j;
    m = std::min(m, j);
  }
  return m;
}

nlohmann::json bench_batch(DecoderLM& lm, int64_t B, int64_t P, int64_t N, int64_t verify,
                           int reps, int uncached_reps, bool bf16, Rng& rng) {
  std::vector<int64_t> p(B * P);
  for (auto& t : p) t = rng.randint(lm.config().vocab);
  const Tensor prompt = Tensor::from_vector(p, {B, P});  // (B, P)
  Tensor f32_tokens;  // (B, N), with --weights bf16 only
  if (bf16) {
    lm.set_inference_dtype(DType::F32);
    f32_tokens = lm.generate(prompt, N);
    lm.set_inference_dtype(DType::BF16);
  }

  const int64_t nv = std::min(verify, N);
  const Tensor short_cached = lm.generate(prompt, nv);
  check(short_cached.to_vector<int64_t>() == lm.generate(prompt, nv).to_vector<int64_t>(),
        "cached generation deterministic");
  check(agreeing_prefix(short_cached, lm.generate_uncached(prompt, nv)) == nv,
        fmt::format("cached and uncached greedy generations agree on the first {} tokens", nv));

  Tensor cached, uncached;
  lm.generate(prompt, N);  // warm-up
  const std::vector<double> tc = timed([&] { cached = lm.generate(prompt, N); }, reps);
  const double mc = median(tc);
  nlohmann::json r{{"batch", B},
          {"prompt", P},
          {"new_tokens", N},
          {"verified_tokens", nv},
          {"cached", {{"reps", reps}, {"median_s", mc}, {"tokens_per_s", B * N / mc},
                      {"min_s", *std::min_element(tc.begin(), tc.end())}}},
  };
  if (bf16) r["agreeing_prefix_vs_f32"] = agreeing_prefix(cached, f32_tokens);
  if (uncached_reps == 0) return r;  // profiling the cached path alone
  const std::vector<double> tu =
      timed([&] { uncached = lm.generate_uncached(prompt, N); }, uncached_reps);
  const double mu = median(tu);
  r["uncached"] = {{"reps", uncached_reps}, {"median_s", mu}, {"tokens_per_s", B * N / mu}};
  r["speedup_cache"] = mu / mc;
  r["agreeing_prefix_full_run"] = agreeing_prefix(cached, uncached);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"focus decoding benchmark: tokens/s with the KV cache and with full recomputation"};
  std::vector<int64_t> batches{1, 16};
  int64_t prompt = 16, n_new = 256, verify = 32;
  int reps = 5, uncached_reps = 1, threads = 0;
  bool json = false;
  std::string weights = "f32";
  DecoderLMConfig cfg;
  app.add_option("--batch", batches, "batches, comma-separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--prompt", prompt, "prompt tokens")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--new", n_new, "generated tokens")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--verify", verify, "tokens compared before timing")->capture_default_str();
  app.add_option("--reps", reps, "timed cached generations")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--uncached-reps", uncached_reps, "timed uncached generations (0: none)")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--layers", cfg.n_layers)->capture_default_str();
  app.add_option("--dim", cfg.d_model)->capture_default_str();
  app.add_option("--heads", cfg.n_heads)->capture_default_str();
  app.add_option("--ff", cfg.d_ff)->capture_default_str();
  app.add_option("--vocab", cfg.vocab)->capture_default_str();
  app.add_option("--threads", threads, "threads (0 = policy)");
  app.add_option("--weights", weights, "inference weights: f32 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  ensure_passive_omp_wait(argv);  // as the focus CLI: idle OpenMP threads sleep (kernels/cpu.hpp)
  try {
    if (threads > 0) set_num_threads(threads);
    cfg.max_len = std::max<int64_t>(cfg.max_len, prompt + n_new);
    Rng rng(1);
    DecoderLM lm(cfg, rng);
    lm.eval();
    const bool bf16 = weights == "bf16";
    if (bf16) lm.set_inference_dtype(DType::BF16);
    nlohmann::json out{{"framework", "focus"},
                       {"threads", num_threads()},
                       {"isa", isa_name(active_isa())},
                       {"blas", gemm_backend_info()},
                       {"params", lm.num_parameters()},
                       {"weights", weights},
                       {"config",
                        {{"vocab", cfg.vocab}, {"d_model", cfg.d_model}, {"layers", cfg.n_layers},
                         {"heads", cfg.n_heads}, {"d_ff", cfg.d_ff}, {"max_len", cfg.max_len}}}};
    for (const int64_t b : batches)
      out["results"].push_back(bench_batch(lm, b, prompt, n_new, verify, reps, uncached_reps, bf16, rng));
    if (json) {
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("focus decoder LM: %lld parameters, %s weights, %d threads, %s\n",
                (long long)lm.num_parameters(), weights.c_str(), num_threads(),
                gemm_backend_info().c_str());
    for (const auto& r : out["results"]) {
      if (r.contains("agreeing_prefix_vs_f32"))
        std::printf("batch %3lld: bf16 and f32 weights agree on the first %lld tokens\n",
                    (long long)r["batch"].get<int64_t>(),
                    (long long)r["agreeing_prefix_vs_f32"].get<int64_t>());
      if (!r.contains("uncached")) {
        std::printf("batch %3lld: cached %8.1f tokens/s (median %.3f s)\n",
                    (long long)r["batch"].get<int64_t>(), r["cached"]["tokens_per_s"].get<double>(),
                    r["cached"]["median_s"].get<double>());
        continue;
      }
      std::printf(
          "batch %3lld: cached %8.1f tokens/s (median %.3f s), uncached %8.1f tokens/s "
          "(%.3f s), cache speedup %.1fx, runs agree on %lld tokens\n",
          (long long)r["batch"].get<int64_t>(), r["cached"]["tokens_per_s"].get<double>(),
          r["cached"]["median_s"].get<double>(), r["uncached"]["tokens_per_s"].get<double>(),
          r["uncached"]["median_s"].get<double>(), r["speedup_cache"].get<double>(),
          (long long)r["agreeing_prefix_full_run"].get<int64_t>());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
