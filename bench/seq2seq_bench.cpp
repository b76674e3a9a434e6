// seq2seq_bench: training throughput of the encoder-decoder Transformer (models/seq2seq) on
// synthetic batches shaped like grapheme-to-phoneme training on CMUdict. bench/seq2seq_torch.py
// is its PyTorch twin and bench/compare_seq2seq.py runs the two in turns.
//   model:   the g2p model by default (src_vocab 32, tgt_vocab 44, d_model 256, 3 + 3 layers,
//            4 heads, d_ff 1024, dropout 0.1, sinusoidal positions); --model-config JSON keys
//            override these (seq2seq_config_from_json).
//   data:    a pool of random "words": source length ~ round(N(7.5, 2.5)) clipped to [2, 20]
//            (CMUdict's letters per word), target y = source length + {-1, 0, +1} (at least 1);
//            tokens uniform over the non-special ids >= 4 (0 pad, 1 <s>, 2 </s>, 3 <unk>);
//            tgt_in = <s> y, tgt_out = y </s>. Sorted by length and cut, fairseq-style, so that
//            batch size * max(S, T) <= --max-tokens (4096) padded tokens; the batches are
//            shuffled and the first --warmup + --steps are used, one per step.
//   step:    zero_grad, loss (label smoothing 0.1, padding ignored), backward,
//            clip_grad_norm(1.0), AdamW (lr 1e-3, weight decay 1e-2).
//   figures: target tokens/s (non-padding tgt_out tokens), source + target tokens/s and
//            sentences/s, each = total over the timed steps / their total time; ms/step median;
//            peak RSS (VmHWM, reset before training). --breakdown also times forward (loss),
//            backward, clip and optimizer step apart (medians).
//   --data-parallel: the step as `focus train --data-parallel true` runs it (train/
//            data_parallel.hpp): the batch's rows split across the threads, one single-threaded
//            forward + backward each (token-weighted losses: the same gradient), run at once.
// Verify: the eval-mode loss of batch 0 (no dropout; "loss_eval_first") must be finite and not
// below log(V) - 1 (random tokens: nothing beats chance). It is not near log(V): with the output
// projection tied to the sqrt(E)-scaled target embedding, the residual stream carries the input
// token's own embedding, whose logit starts of order sqrt(E) ("copy the input": ~10 at E = 256),
// so the first loss is ~9.9 at V = 44 (PyTorch gives the same at the same weights). The losses
// must be finite and the last 10 average within 1 nat of log(V) (the bias unlearnt in a few steps).
// The losses are checked after the timed steps (checking costs no time inside them).
// --dump-batches FILE writes the batches and the initial weights (safetensors; batch.{i}.src,
// .src_len, .tgt_in, .tgt_out, and the parameters by name) for seq2seq_torch.py, then exits.
// Limits: Linux only (memory from /proc); random tokens (throughput does not depend on them).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "focus/kernels/precision.hpp"
#include "focus/autograd/node.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/optim/adam.hpp"
#include "focus/optim/clip.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/data_parallel.hpp"

using namespace focus;

namespace {

constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kFirstToken = 4;

double status_mib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  throw StateError(fmt::format("seq2seq_bench: {} not in /proc/self/status", key));
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void check(bool ok, const std::string& what) {
  if (!ok) throw StateError("seq2seq_bench: verification failed: " + what);
}

struct Batch {
  Tensor src, src_len, tgt_in, tgt_out;  // (B, S), (B), (B, T), (B, T) I64
  int64_t src_tokens = 0, tgt_tokens = 0;  // non-padding
  int64_t sentences() const { return src.size(0); }
};

struct Pair {
  std::vector<int64_t> x, y;  // source tokens, target tokens without <s> / </s>
};

Batch make_batch(const std::vector<Pair>& pairs, size_t lo, size_t hi) {
  const int64_t B = int64_t(hi - lo);
  int64_t S = 0, T = 0;
  for (size_t i = lo; i < hi; ++i) {
    S = std::max<int64_t>(S, int64_t(pairs[i].x.size()));
    T = std::max<int64_t>(T, int64_t(pairs[i].y.size()) + 1);
  }
  std::vector<int64_t> src(B * S, kPad), len(B), tin(B * T, kPad), tout(B * T, kPad);
  Batch b;
  for (int64_t r = 0; r < B; ++r) {
    const Pair& p = pairs[lo + r];
    const int64_t n = int64_t(p.x.size()), m = int64_t(p.y.size());
    std::copy(p.x.begin(), p.x.end(), src.begin() + r * S);
    len[r] = n;
    tin[r * T] = kBos;
    std::copy(p.y.begin(), p.y.end(), tin.begin() + r * T + 1);
    std::copy(p.y.begin(), p.y.end(), tout.begin() + r * T);
    tout[r * T + m] = kEos;
    b.src_tokens += n;
    b.tgt_tokens += m + 1;
  }
  b.src = Tensor::from_vector(src, {B, S});       // (B, S)
  b.src_len = Tensor::from_vector(len, {B});      // (B)
  b.tgt_in = Tensor::from_vector(tin, {B, T});    // (B, T)
  b.tgt_out = Tensor::from_vector(tout, {B, T});  // (B, T)
  return b;
}

// `count` length-bucketed batches of at most max_tokens padded tokens (batch * max(S, T)).
std::vector<Batch> make_batches(const Seq2SeqConfig& cfg, int64_t max_tokens, int count,
                                Rng& rng) {
  const auto clamp_len = [](double v, int64_t lo, int64_t hi) {
    return std::clamp<int64_t>(int64_t(std::lround(v)), lo, hi);
  };
  std::vector<Pair> pairs;
  // About 9.5 padded tokens per sentence: a pool for 1.25 x `count` batches, grown if short.
  for (size_t want = size_t(1.25 * count * max_tokens / 9.5) + 1;; want *= 2) {
    while (pairs.size() < want) {
      Pair p;
      const int64_t n = clamp_len(7.5 + 2.5 * rng.normal(), 2, 20);
      const int64_t m = std::max<int64_t>(1, n + rng.randint(3) - 1);
      for (int64_t i = 0; i < n; ++i) p.x.push_back(kFirstToken + rng.randint(cfg.src_vocab - kFirstToken));
      for (int64_t i = 0; i < m; ++i) p.y.push_back(kFirstToken + rng.randint(cfg.tgt_vocab - kFirstToken));
      pairs.push_back(std::move(p));
    }
    std::vector<Pair> sorted = pairs;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Pair& a, const Pair& b) {
      return std::pair(a.x.size(), a.y.size()) < std::pair(b.x.size(), b.y.size());
    });
    std::vector<std::pair<size_t, size_t>> cuts;  // [lo, hi) into sorted
    size_t lo = 0;
    int64_t width = 0;  // max(S, T) of the open batch
    for (size_t i = 0; i < sorted.size(); ++i) {
      const int64_t w = std::max<int64_t>(int64_t(sorted[i].x.size()), int64_t(sorted[i].y.size()) + 1);
      check(w <= max_tokens, fmt::format("--max-tokens {} holds a sentence of {} tokens", max_tokens, w));
      if (int64_t(i - lo + 1) * std::max(width, w) > max_tokens) {
        cuts.emplace_back(lo, i);
        lo = i;
        width = 0;
      }
      width = std::max(width, w);
    }
    cuts.emplace_back(lo, sorted.size());
    if (int64_t(cuts.size()) < count) continue;
    for (size_t i = cuts.size() - 1; i > 0; --i) std::swap(cuts[i], cuts[rng.randint(int64_t(i) + 1)]);
    std::vector<Batch> out;
    for (int i = 0; i < count; ++i) out.push_back(make_batch(sorted, cuts[i].first, cuts[i].second));
    return out;
  }
}

void dump(const std::string& path, const std::vector<Batch>& batches, const Seq2Seq& m,
          const Seq2SeqConfig& cfg) {
  std::map<std::string, Tensor> t;
  for (size_t i = 0; i < batches.size(); ++i) {
    const std::string k = "batch." + std::to_string(i) + ".";
    t[k + "src"] = batches[i].src;
    t[k + "src_len"] = batches[i].src_len;
    t[k + "tgt_in"] = batches[i].tgt_in;
    t[k + "tgt_out"] = batches[i].tgt_out;
  }
  for (const auto& [name, p] : m.named_parameters()) t["param." + name] = p;
  save_safetensors(path, t, {{"config", to_json(cfg).dump()},
                             {"batches", std::to_string(batches.size())}});
}

struct Phases {
  std::vector<double> step, forward, backward, clip, optim;
};

int64_t non_padding(const Tensor& t) {  // I64, pad id 0
  int64_t n = 0;
  for (const int64_t v : t.contiguous().to_vector<int64_t>()) n += v != 0;
  return n;
}

nlohmann::json bench_train(Seq2Seq& m, const std::vector<Batch>& batches, int warmup, double ls,
                           double max_norm, bool breakdown, bool data_parallel) {
  const double log_v = std::log(double(m.config().tgt_vocab));
  double loss_eval = 0.0;
  {
    m.eval();
    NoGradGuard no_grad;
    const Batch& b = batches[0];
    loss_eval = m.loss(b.src, b.src_len, b.tgt_in, b.tgt_out, ls).item();
    check(std::isfinite(loss_eval) && loss_eval > log_v - 1.0,
          fmt::format("eval loss of batch 0 {} finite and > log(V) - 1 = {}", loss_eval, log_v - 1));
    m.train();
  }
  reset_peak_rss();
  const double rss0 = status_mib("VmRSS");
  AdamW opt(m.named_parameters(), AdamWOptions{});
  const std::vector<Tensor> params = m.parameters();
  std::vector<double> losses;
  Phases ph;
  const int workers = data_parallel ? num_threads() : 1;
  // Rows [lo, hi) of b, weighted by w (their share of the target tokens): forward and backward
  // of their part of the batch's mean loss.
  auto part = [&](const Batch& b, int64_t lo, int64_t hi, double w) {
    Tensor loss = mul(m.loss(b.src.slice(0, lo, hi), b.src_len.slice(0, lo, hi),
                             b.tgt_in.slice(0, lo, hi), b.tgt_out.slice(0, lo, hi), ls),
                      w);
    loss.backward();
    return loss.item();
  };
  auto step = [&](const Batch& b) {
    const int64_t B = b.sentences(), n = std::min<int64_t>(workers, B);
    std::vector<double> w(static_cast<size_t>(n));  // counted before the clock starts
    for (int64_t i = 0; i < n && workers > 1; ++i)
      w[i] = double(non_padding(b.tgt_out.slice(0, i * B / n, (i + 1) * B / n))) / b.tgt_tokens;
    const auto t0 = Clock::now();
    opt.zero_grad();
    auto t1 = t0, t2 = t0;
    if (workers > 1) {  // forward and backward together, counted as forward
      double total_loss = 0.0;
      for (const double l : run_micro_batches(n, workers, uint64_t(losses.size()), [&](int64_t i) {
             return part(b, i * B / n, (i + 1) * B / n, w[i]);
           }))
        total_loss += l;
      losses.push_back(total_loss);
      t1 = t2 = Clock::now();
    } else {
      const Tensor loss = m.loss(b.src, b.src_len, b.tgt_in, b.tgt_out, ls);
      losses.push_back(loss.item());  // the forward pass has run (eager): only a read
      t1 = Clock::now();
      loss.backward();
      t2 = Clock::now();
    }
    clip_grad_norm(params, max_norm);
    const auto t3 = Clock::now();
    opt.step();
    const double total = since(t0);
    ph.step.push_back(total);
    ph.forward.push_back(std::chrono::duration<double>(t1 - t0).count());
    ph.backward.push_back(std::chrono::duration<double>(t2 - t1).count());
    ph.clip.push_back(std::chrono::duration<double>(t3 - t2).count());
    ph.optim.push_back(total - std::chrono::duration<double>(t3 - t0).count());
  };
  for (int i = 0; i < warmup; ++i) step(batches[i]);
  ph = Phases{};
  int64_t src_tok = 0, tgt_tok = 0, sent = 0;
  for (size_t i = warmup; i < batches.size(); ++i) {
    step(batches[i]);
    src_tok += batches[i].src_tokens;
    tgt_tok += batches[i].tgt_tokens;
    sent += batches[i].sentences();
  }
  // Random targets: training can only unlearn the start's bias and reach about chance.
  const size_t tail = std::min<size_t>(10, losses.size());
  double late = 0.0;
  for (size_t i = losses.size() - tail; i < losses.size(); ++i) late += losses[i] / double(tail);
  check(std::all_of(losses.begin(), losses.end(), [](double v) { return std::isfinite(v); }) &&
            std::abs(late - log_v) < 1.0,
        fmt::format("training losses finite, the last {} averaging {} within 1 of log(V) = {}: {}",
                    tail, late, log_v, fmt::join(losses, ", ")));
  double total = 0.0;
  for (double t : ph.step) total += t;
  nlohmann::json r{{"steps", ph.step.size()},
                   {"warmup", warmup},
                   {"median_ms", median(ph.step) * 1e3},
                   {"total_s", total},
                   {"tgt_tokens", tgt_tok},
                   {"src_tokens", src_tok},
                   {"sentences", sent},
                   {"tgt_tokens_per_s", tgt_tok / total},
                   {"tokens_per_s", (src_tok + tgt_tok) / total},
                   {"sentences_per_s", sent / total},
                   {"data_parallel", data_parallel},
                   {"loss_eval_first", loss_eval},
                   {"loss_first", losses.front()},
                   {"loss_last", losses.back()},
                   {"log_v", log_v},
                   {"rss_before_mib", rss0},
                   {"peak_rss_mib", status_mib("VmHWM")}};
  if (breakdown)
    r["breakdown_ms"] = {{"forward", median(ph.forward) * 1e3},
                         {"backward", median(ph.backward) * 1e3},
                         {"clip", median(ph.clip) * 1e3},
                         {"optimizer", median(ph.optim) * 1e3}};
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"focus seq2seq training benchmark: tokens/s on CMUdict-shaped g2p batches"};
  int64_t max_tokens = 4096;
  int steps = 30, warmup = 3, threads = 0;
  uint64_t seed = 1;
  double ls = 0.1, max_norm = 1.0;
  bool json = false, breakdown = false, data_parallel = false;
  std::string model_config = "{}", dump_path;
  app.add_option("--max-tokens", max_tokens, "padded tokens per batch, batch * max(S, T)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed training steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "model and data seed")->capture_default_str();
  app.add_option("--label-smoothing", ls)->capture_default_str();
  app.add_option("--clip", max_norm, "gradient clipping max norm")->capture_default_str();
  app.add_option("--model-config", model_config, "JSON keys overriding the g2p model's config");
  app.add_option("--dump-batches", dump_path, "write batches + initial weights (safetensors), exit");
  app.add_option("--threads", threads, "threads (0 = policy)");
  app.add_flag("--breakdown", breakdown, "time forward / backward / clip / optimizer apart");
  app.add_flag("--data-parallel", data_parallel,
               "split each batch across the threads, one single-threaded step part each");
  std::string precision = "f32";
  app.add_option("--precision", precision,
                 "f32 | bf16: the GEMMs and convolutions at bf16 with F32 accumulation "
                 "(kernels/precision.hpp; refused without AVX512-BF16 or AMX)")
      ->capture_default_str();
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  ensure_passive_omp_wait(argv);  // as the focus CLI: idle OpenMP threads sleep (kernels/cpu.hpp)
  try {
    set_compute_precision(supported_precision(precision));
    if (threads > 0) set_num_threads(threads);
    nlohmann::json cj{{"src_vocab", 32}, {"tgt_vocab", 44}, {"d_model", 256},
                      {"n_enc_layers", 3}, {"n_dec_layers", 3}, {"n_heads", 4},
                      {"d_ff", 1024}, {"dropout", 0.1}};
    cj.update(nlohmann::json::parse(model_config));
    const Seq2SeqConfig cfg = seq2seq_config_from_json(cj);
    FOCUS_CHECK(cfg.src_vocab > kFirstToken && cfg.tgt_vocab > kFirstToken, ValueError,
                "seq2seq_bench: vocabularies {} / {} leave no ids past the 4 special ones",
                cfg.src_vocab, cfg.tgt_vocab);
    FOCUS_CHECK(cfg.max_len >= 22, ValueError, "seq2seq_bench: max_len {} < 22 (20 letters + 2)",
                cfg.max_len);
    Rng rng(seed), data_rng(seed + 1);
    Seq2Seq m(cfg, rng);
    const std::vector<Batch> batches = make_batches(cfg, max_tokens, warmup + steps, data_rng);
    if (!dump_path.empty()) {
      dump(dump_path, batches, m, cfg);
      return 0;
    }
    nlohmann::json out{{"framework", "focus"},
                       {"precision", precision},
                       {"threads", num_threads()},
                       {"isa", isa_name(active_isa())},
                       {"blas", gemm_backend_info()},
                       {"params", m.num_parameters()},
                       {"max_tokens", max_tokens},
                       {"config", to_json(cfg)}};
    FOCUS_CHECK(!(breakdown && data_parallel), ValueError,
                "seq2seq_bench: --breakdown times forward and backward apart; --data-parallel "
                "runs them together");
    out["train"] = bench_train(m, batches, warmup, ls, max_norm, breakdown, data_parallel);
    if (json) {
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    const auto& t = out["train"];
    std::printf("focus seq2seq: %lld parameters, %d threads, %s\n", (long long)m.num_parameters(),
                num_threads(), gemm_backend_info().c_str());
    std::printf("training: %.0f target tokens/s, %.0f source+target tokens/s, %.1f sentences/s, "
                "%.1f ms/step (median of %d), loss %.3f (eval %.3f, log V %.3f) -> %.3f, "
                "peak RSS %.0f MiB\n",
                t["tgt_tokens_per_s"].get<double>(), t["tokens_per_s"].get<double>(),
                t["sentences_per_s"].get<double>(), t["median_ms"].get<double>(), steps,
                t["loss_first"].get<double>(), t["loss_eval_first"].get<double>(),
                t["log_v"].get<double>(), t["loss_last"].get<double>(),
                t["peak_rss_mib"].get<double>());
    if (breakdown)
      for (const auto& [k, v] : t["breakdown_ms"].items())
        std::printf("  %-9s %7.1f ms\n", k.c_str(), v.get<double>());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seq2seq_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
