// `focus bench text --model M.safetensors`: text-transformer speed, the focus side of
// bench/compare_text.py (its PyTorch twin is bench/text_torch.py, which builds the same inputs).
//   inference: batch 1, --len token ids (default 64, no padding) -> logits through
//     TextPredictor::logits_ids (no graph; batch 1 runs on one thread), timed request by request
//     after --warmup untimed ones: median, p99, mean, requests/s (= requests / their total time);
//     also the median and p99 of each request's on-CPU time (this thread's CPU clock), which
//     leave out the waits for a core on a loaded machine.
//     From token ids, not text, so tokenizers are not compared (the twin has none). --path
//     reference times the model's forward instead of the fast path (infer/text_fast.hpp).
//   training: one fixed batch of --train-batch rows x --len ids with fixed labels, train mode
//     (the model's dropout), zero_grad + forward + cross-entropy + backward + AdamW step (lr 1e-3,
//     weight decay 1e-2: torch's AdamW defaults), --train-steps timed steps after
//     --train-warmup: median step, tokens/s = batch x len / median.
//   check: the logits of the batch-1 input and of a padded batch (rows of 64, 40, 17, 5 ids,
//     right-padded with 0 to --len) printed in the JSON, for the twin to compare against.
// The ids (both sides): row r, position t -> 1 + (r * 9973 + t * 7919 + 17) mod (V - 1); labels
// (r * 7 + 3) mod K.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/text_predictor.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/ops/loss.hpp"
#include "focus/optim/adam.hpp"

namespace focus {

namespace {

// Rows of token ids (rows, L) I64: row r holds lengths[r] ids by the formula above, then padding.
Tensor bench_ids(const std::vector<int64_t>& lengths, int64_t L, int64_t vocab) {
  FOCUS_CHECK(vocab >= 2, ValueError, "bench text: vocabulary of {} ids is too small", vocab);
  const int64_t N = int64_t(lengths.size());
  std::vector<int64_t> v(size_t(N * L), 0);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t t = 0; t < std::min(L, lengths[size_t(r)]); ++t)
      v[size_t(r * L + t)] = 1 + (r * 9973 + t * 7919 + 17) % (vocab - 1);
  return Tensor::from_vector(v, {N, L});
}

double percentile(std::vector<double> v, double q) {  // nearest rank
  std::sort(v.begin(), v.end());
  const size_t k = size_t(std::ceil(q * double(v.size())));
  return v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)];
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// This thread's CPU time (batch-1 inference runs on the calling thread): a request's on-CPU
// time, which leaves out the time the scheduler gave other processes.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return 1e3 * double(ts.tv_sec) + 1e-6 * double(ts.tv_nsec);
}

}  // namespace

Command add_bench_text_command(CLI::App& bench) {
  CLI::App* b = bench.add_subcommand(
      "text", "text-transformer batch-1 inference latency and training tokens/s (bench/compare_text.py)");
  struct Opts {
    std::string model;
    int64_t len = 64, requests = 2000, warmup = 200, train_batch = 32;
    int threads = 0, train_steps = 20, train_warmup = 3;
    bool no_train = false, no_infer = false;
    std::string path = "fast";
  };
  auto o = std::make_shared<Opts>();
  b->add_option("--model", o->model, "text model file (.safetensors, focus train --task text)")->required();
  b->add_option("--threads", o->threads, "threads (0 = policy); batch-1 inference runs on one")
      ->capture_default_str();
  b->add_option("--len", o->len, "tokens per row")->check(CLI::PositiveNumber)->capture_default_str();
  b->add_option("--requests", o->requests, "timed batch-1 requests")->check(CLI::PositiveNumber)
      ->capture_default_str();
  b->add_option("--warmup", o->warmup, "untimed requests first")->capture_default_str();
  b->add_option("--train-batch", o->train_batch, "training rows per step")->check(CLI::PositiveNumber)
      ->capture_default_str();
  b->add_option("--train-steps", o->train_steps, "timed training steps")->check(CLI::PositiveNumber)
      ->capture_default_str();
  b->add_option("--train-warmup", o->train_warmup, "untimed training steps first")->capture_default_str();
  b->add_option("--path", o->path, "inference path: fast (infer/text_fast.hpp) | reference (the model's forward)")
      ->check(CLI::IsMember({"fast", "reference"}))->capture_default_str();
  b->add_flag("--no-train", o->no_train, "skip the training timer");
  b->add_flag("--no-infer", o->no_infer, "skip the inference timer");
  return [o, b] {
    if (!b->parsed()) return -1;
    if (o->threads > 0) set_num_threads(o->threads);
    TextPredictor p = TextPredictor::load(o->model, /*calibrated=*/false);
    p.set_path(o->path == "fast" ? TextPath::Fast : TextPath::Reference);
    LoadedClassifier lm = load_classifier(o->model);
    auto* tm = dynamic_cast<TextTransformer*>(lm.model.get());
    FOCUS_CHECK(tm != nullptr, FormatError, "bench text: {} holds no text model", o->model);
    const TextTransformerConfig cfg = tm->cfg();
    const int64_t L = o->len, V = cfg.vocab_size, K = cfg.num_classes;
    FOCUS_CHECK(L <= cfg.max_len, ValueError, "bench text: --len {} exceeds the model's max_len {}",
                L, cfg.max_len);
    nlohmann::json out = {{"model", o->model},         {"config", cfg.to_json()},
                          {"threads", num_threads()},  {"isa", isa_name(active_isa())},
                          {"len", L},                  {"input", "token ids"},
                          {"path", p.path() == TextPath::Fast ? "fast" : "reference"}};
    // Check inputs' logits.
    const Tensor x1 = bench_ids({L}, L, V);  // (1, L)
    out["check"]["batch1_logits"] = p.logits_ids(x1).contiguous().to_vector<float>();
    std::vector<int64_t> lens = {64, 40, 17, 5};
    for (int64_t& l : lens) l = std::min(l, L);
    out["check"]["padded_lengths"] = lens;
    out["check"]["padded_logits"] = p.logits_ids(bench_ids(lens, L, V)).contiguous().to_vector<float>();

    if (!o->no_infer) {
      for (int64_t i = 0; i < o->warmup; ++i) p.logits_ids(x1);
      std::vector<double> ms, cpu_ms;
      ms.reserve(size_t(o->requests));
      cpu_ms.reserve(size_t(o->requests));
      const auto all0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < o->requests; ++i) {
        const double c0 = thread_cpu_ms();
        const auto t0 = std::chrono::steady_clock::now();
        const Tensor z = p.logits_ids(x1);  // (1, K)
        ms.push_back(1e3 * seconds_since(t0));
        cpu_ms.push_back(thread_cpu_ms() - c0);
        FOCUS_CHECK(std::isfinite(z.contiguous().data<float>()[0]), StateError,
                    "bench text: a non-finite logit");
      }
      const double total = seconds_since(all0);
      double sum = 0;
      for (double v : ms) sum += v;
      out["infer"] = {{"requests", o->requests},           {"median_ms", percentile(ms, 0.5)},
                      {"p99_ms", percentile(ms, 0.99)},    {"mean_ms", sum / double(ms.size())},
                      {"requests_per_s", double(o->requests) / total},
                      {"cpu_median_ms", percentile(cpu_ms, 0.5)}, {"cpu_p99_ms", percentile(cpu_ms, 0.99)}};
    }
    if (!o->no_train) {
      const int64_t B = o->train_batch;
      const Tensor xb = bench_ids(std::vector<int64_t>(size_t(B), L), L, V);  // (B, L)
      std::vector<int64_t> labels(static_cast<size_t>(B), 0);
      for (int64_t r = 0; r < B; ++r) labels[size_t(r)] = (r * 7 + 3) % K;
      const Tensor y = Tensor::from_vector(labels, {B});  // (B)
      tm->train();
      AdamW opt(tm->named_parameters(), AdamWOptions{});
      std::vector<double> losses, step_s;
      for (int s = 0; s < o->train_warmup + o->train_steps; ++s) {
        const auto t0 = std::chrono::steady_clock::now();
        opt.zero_grad();
        const Tensor loss = cross_entropy(tm->forward(xb), y);
        loss.backward();
        opt.step();
        losses.push_back(loss.item());
        if (s >= o->train_warmup) step_s.push_back(seconds_since(t0));
      }
      for (double l : losses)
        FOCUS_CHECK(std::isfinite(l), StateError, "bench text: a non-finite training loss");
      const double med = percentile(step_s, 0.5);
      out["train"] = {{"batch", B},           {"len", L},
                      {"steps", o->train_steps}, {"median_step_ms", 1e3 * med},
                      {"tokens_per_s", double(B * L) / med}, {"loss_first", losses.front()},
                      {"loss_last", losses.back()}};
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
  };
}

}  // namespace focus
