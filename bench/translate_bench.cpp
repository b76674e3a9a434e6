// translate_bench: decoding throughput of a trained seq2seq model (a g2p model file) on real
// inputs, with the decoder's KV caches (greedy_search: self-attention K/V appended per step,
// encoder K/V projected once) and without them (every step reruns Seq2Seq::decode over the
// whole prefix, cross-attention projections included), at each --batch (1,64).
//   inputs:  the first --words (1000) CMUdict test-split words (the g2p split of
//            train/seq2seq_data), lower-cased and tokenized by the model's own tokenizer;
//            batches of --batch consecutive words in that order.
//   words/s: words / seconds of decoding them all (encoder included), median of --reps passes;
//            output tokens/s likewise (tokens without </s>).
// Verify first, time second: both paths must give the same greedy outputs for every word (a
// mismatch is an error; float sums differ in order, but g2p outputs are short and never tie here).
// --dump-sources FILE writes the source ids and focus's outputs for the PyTorch twin
// (bench/translate_torch.py; bench/compare_translate.py runs the two in turns).
// --weights bf16 / int8 decodes with bf16 or int8 inference weights (Module::set_inference_dtype;
// int8: every Linear and, unless --int8-output false, the tied output projection); the words
// whose output equals the F32 model's are counted (words_equal_f32). Each variant's WER / PER
// on the decoded words is reported beside its speed. Several --weights
// (f32,int8) load one model each and time them in interleaved rounds (round k times every
// variant once), medians per variant and the ratio against the first; --cached-only leaves out
// the uncached path. The load average before and after is printed (a shared machine).
// Limits: greedy only (beam search always uses the caches); F32 activations; the finished words
// leave the batch on both paths.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "focus/autograd/node.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/models/seq2seq_search.hpp"
#include "focus/nn/linear.hpp"
#include "focus/ops/index.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/metrics.hpp"
#include "focus/train/config.hpp"
#include "focus/train/seq2seq_data.hpp"

using namespace focus;

namespace {

using Outputs = std::vector<std::vector<int64_t>>;  // tokens per word, without <s> / </s>

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Greedy decoding of one batch without caches: each step decodes the whole prefix (A, t) of the
// A unfinished words and keeps the last position's argmax.
Outputs greedy_uncached(Seq2Seq& model, const Tensor& src, const Tensor& src_len) {
  NoGradGuard no_grad;
  const int64_t B = src.size(0), max_len = model.config().max_len;
  Tensor memory = model.encode(src, src_len);  // (B, S, E)
  std::vector<int64_t> lens = src_len.to_vector<int64_t>();
  Outputs out(static_cast<size_t>(B));
  std::vector<int64_t> rows(static_cast<size_t>(B));  // word of each live row
  for (int64_t b = 0; b < B; ++b) rows[size_t(b)] = b;
  for (int64_t t = 0; t < max_len && !rows.empty(); ++t) {
    const int64_t A = int64_t(rows.size());
    std::vector<int64_t> prefix(size_t(A * (t + 1)));  // (A, t + 1): <s> and the tokens so far
    for (int64_t r = 0; r < A; ++r) {
      prefix[size_t(r * (t + 1))] = Seq2Seq::kBos;
      const auto& toks = out[size_t(rows[size_t(r)])];
      std::copy(toks.begin(), toks.end(), prefix.begin() + r * (t + 1) + 1);
    }
    const Tensor logits = model.decode(Tensor::from_vector(prefix, {A, t + 1}), memory,
                                       Tensor::from_vector(lens, {A}));
    const std::vector<float> last = logits.select(1, t).to_vector<float>();  // (A, V)
    const int64_t V = logits.size(2);
    std::vector<int64_t> keep, keep_rows, keep_lens;
    for (int64_t r = 0; r < A; ++r) {
      const float* row = last.data() + r * V;
      const int64_t v = std::max_element(row, row + V) - row;
      if (v != Seq2Seq::kEos && t + 1 < max_len) {
        out[size_t(rows[size_t(r)])].push_back(v);
        keep.push_back(r);
        keep_rows.push_back(rows[size_t(r)]);
        keep_lens.push_back(lens[size_t(r)]);
      } else if (v != Seq2Seq::kEos) {
        out[size_t(rows[size_t(r)])].push_back(v);
      }
    }
    if (int64_t(keep.size()) != A && !keep.empty()) {
      const Tensor idx = Tensor::from_vector(keep, {int64_t(keep.size())});
      memory = index_select(memory, 0, idx);
    }
    rows = std::move(keep_rows);
    lens = std::move(keep_lens);
  }
  return out;
}

Outputs greedy_cached(Seq2Seq& model, const Tensor& src, const Tensor& src_len) {
  const auto hyps = greedy_search(model, src, src_len);
  Outputs out;
  for (const auto& h : hyps) out.push_back(h.at(0).tokens);
  return out;
}

using Decoder = std::function<Outputs(Seq2Seq&, const Tensor&, const Tensor&)>;

// All words in batches of `batch`, in order.
Outputs decode_all(Seq2Seq& model, const Outputs& src, int64_t batch, const Decoder& dec) {
  Outputs out;
  for (size_t lo = 0; lo < src.size(); lo += size_t(batch)) {
    std::vector<int64_t> idx;
    for (size_t i = lo; i < std::min(src.size(), lo + size_t(batch)); ++i) idx.push_back(int64_t(i));
    Tensor s, len;
    make_source_batch(src, idx, s, len);
    for (auto& o : dec(model, s, len)) out.push_back(std::move(o));
  }
  return out;
}

DType dtype_of(const std::string& w) {
  return w == "bf16" ? DType::BF16 : w == "int8" ? DType::I8 : DType::F32;
}

// The first line of /proc/loadavg's three figures, or "" where it cannot be read.
std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return "";
  char buf[128] = {0};
  const bool ok = std::fgets(buf, sizeof(buf), f) != nullptr;
  std::fclose(f);
  if (!ok) return "";
  std::string s(buf);
  size_t cut = 0;
  for (int field = 0; field < 3 && cut != std::string::npos; ++field) cut = s.find(' ', cut + 1);
  return s.substr(0, cut);
}

int run(int argc, char** argv) {
  CLI::App app{"focus translation decoding benchmark: words/s with and without the KV caches"};
  std::string model_path, cmudict, dump;
  std::vector<std::string> weights = {"f32"};
  std::vector<int64_t> batches = {1, 64};
  int64_t words = 1000;
  int reps = 3, threads = 0;
  bool json = false, cached_only = false, int8_output = true;
  app.add_option("--model", model_path, "a focus seq2seq model file (g2p)")->required();
  app.add_option("--cmudict", cmudict, "CMUdict dict.txt (default: the data cache)");
  app.add_option("--words", words, "test-split words decoded")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", batches, "batches, comma-separated")->delimiter(',')->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--reps", reps, "timed passes per path")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--threads", threads, "threads (0 = policy)");
  app.add_option("--weights", weights,
                 "inference weights, comma-separated (f32, bf16, int8); several: timed in "
                 "interleaved rounds, ratios against the first")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  app.add_option("--int8-output", int8_output,
                 "int8: the tied output projection int8 too (false: F32)")
      ->capture_default_str();
  app.add_flag("--cached-only", cached_only, "time (and verify) the KV-cache path only");
  app.add_flag("--json", json, "print JSON");
  app.add_option("--dump-sources", dump,
                 "write the source ids and focus's greedy outputs (JSON) for translate_torch.py");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);
  for (size_t i = 0; i < weights.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      FOCUS_CHECK(weights[i] != weights[j], ValueError, "translate_bench: --weights {} given twice",
                  weights[i]);

  // One model per variant, its inference weights prepared once.
  std::vector<Seq2SeqModelFile> models;
  for (const std::string& w : weights) {
    models.push_back(load_seq2seq(model_path));
    Seq2SeqModelFile& f = models.back();
    FOCUS_CHECK(f.task == "g2p", ValueError,
                "translate_bench: {} is a '{}' model; it needs a g2p model", model_path, f.task);
    f.model->eval();
    f.model->set_inference_dtype(dtype_of(w));
    if (w == "int8" && !int8_output)
      for (const auto& [name, m] : f.model->named_modules())
        if (auto* e = dynamic_cast<Embedding*>(m)) e->set_inference_dtype(DType::F32);
  }
  const Seq2SeqModelFile& f = models[0];
  TrainConfig cfg;
  cfg.task = "g2p";
  cfg.cmudict = cmudict;
  cfg.keep_stress = f.extra.value("keep_stress", false);
  const Seq2SeqTaskData data = load_seq2seq_data(cfg);
  Outputs src;
  int64_t src_tokens = 0;
  for (const RefGroup& g : data.test.groups) {
    if (int64_t(src.size()) == words) break;
    src.push_back(f.src_tok->encode(normalize_source("g2p", g.source)));
    src_tokens += int64_t(src.back().size());
  }

  FOCUS_CHECK(dump.empty() || weights == std::vector<std::string>{"f32"}, ValueError,
              "translate_bench: --dump-sources needs --weights f32 (the PyTorch twin runs F32)");
  Outputs f32_outputs;  // the F32 model's greedy outputs, where a variant is not F32
  if (weights != std::vector<std::string>{"f32"}) {
    Seq2SeqModelFile ref = load_seq2seq(model_path);
    ref.model->eval();
    f32_outputs = decode_all(*ref.model, src, 64, greedy_cached);
  }
  const std::string load_before = load_average();

  nlohmann::json results = nlohmann::json::array();
  for (const int64_t batch : batches) {
    nlohmann::json variants = nlohmann::json::array();
    std::vector<std::vector<double>> times(weights.size() * 2);  // [variant][cached, uncached]
    int64_t out_tokens = 0;
    for (size_t v = 0; v < weights.size(); ++v) {
      Seq2Seq& model = *models[v].model;
      // Verify: the two paths agree on every word.
      const Outputs cached = decode_all(model, src, batch, greedy_cached);
      if (!cached_only) {
        const Outputs uncached = decode_all(model, src, batch, greedy_uncached);
        for (size_t i = 0; i < src.size(); ++i)
          FOCUS_CHECK(cached[i] == uncached[i], StateError,
                      "translate_bench: {} weights batch {} word {} ('{}'): cached and uncached "
                      "greedy outputs differ",
                      weights[v], batch, i, data.test.groups[i].source);
      }
      if (!dump.empty() && results.empty())
        write_file_atomic(dump, nlohmann::json{{"sources", src}, {"outputs", cached}}.dump());
      int64_t tokens = 0;
      for (const auto& o : cached) tokens += int64_t(o.size());
      if (v == 0) out_tokens = tokens;
      // WER / PER (%) of these words against their references (text/metrics.hpp).
      std::vector<std::string> hyps;
      std::vector<std::vector<std::string>> refs;
      for (size_t i = 0; i < src.size(); ++i) {
        hyps.push_back(models[v].tgt_tok->decode(cached[i]));
        refs.push_back(data.test.groups[i].refs);
      }
      const G2PScore g = score_g2p(hyps, refs);
      nlohmann::json r = {{"weights", weights[v]}, {"output_tokens", tokens},
                          {"wer", 100 * g.wer()}, {"per", 100 * g.per()}};
      if (!f32_outputs.empty()) {
        int64_t same = 0;
        for (size_t i = 0; i < src.size(); ++i) same += cached[i] == f32_outputs[i];
        r["words_equal_f32"] = same;
      }
      variants.push_back(r);
    }
    // Interleaved rounds: each round times every variant once, so a change of load on the
    // shared machine falls on all of them alike.
    for (int k = 0; k < reps; ++k)
      for (size_t v = 0; v < weights.size(); ++v)
        for (int path = 0; path < (cached_only ? 1 : 2); ++path) {
          const auto t0 = std::chrono::steady_clock::now();
          decode_all(*models[v].model, src, batch, path == 0 ? Decoder(greedy_cached) : Decoder(greedy_uncached));
          times[v * 2 + size_t(path)].push_back(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
    for (size_t v = 0; v < weights.size(); ++v) {
      nlohmann::json& r = variants[v];
      const int64_t tokens = r["output_tokens"].get<int64_t>();
      for (int path = 0; path < (cached_only ? 1 : 2); ++path) {
        const double s = median(times[v * 2 + size_t(path)]);
        r[path == 0 ? "cached" : "uncached"] = {{"median_s", s},
                                                {"words_per_s", double(src.size()) / s},
                                                {"tokens_per_s", double(tokens) / s}};
      }
      if (!cached_only)
        r["cache_speedup"] = r["uncached"]["median_s"].get<double>() / r["cached"]["median_s"].get<double>();
      r["cached_speedup_vs_" + weights[0]] =
          variants[0]["cached"]["median_s"].get<double>() / r["cached"]["median_s"].get<double>();
    }
    // The first variant's figures at the top level (the one-variant schema compare_translate.py reads).
    nlohmann::json r = variants[0];
    r.erase("weights");
    r["batch"] = batch;
    r["words"] = src.size();
    r["output_tokens"] = out_tokens;
    if (weights.size() > 1) r["variants"] = variants;
    results.push_back(r);
  }
  const std::string load_after = load_average();
  if (json) {
    std::printf("%s\n", nlohmann::json{{"model", model_path},
                                       {"threads", num_threads()},
                                       {"weights", weights.size() == 1 ? nlohmann::json(weights[0])
                                                                       : nlohmann::json(weights)},
                                       {"int8_output", int8_output},
                                       {"source_tokens", src_tokens},
                                       {"loadavg_before", load_before},
                                       {"loadavg_after", load_after},
                                       {"results", results}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::string names;
  for (const auto& w : weights) names += (names.empty() ? "" : ", ") + w;
  std::printf("focus translate_bench: %s, %zu test words (%lld source tokens), %s weights, %d "
              "threads, greedy; load %s -> %s\n",
              model_path.c_str(), src.size(), (long long)src_tokens, names.c_str(), num_threads(),
              load_before.c_str(), load_after.c_str());
  if (!cached_only) std::printf("  cached and uncached outputs agree on every word\n");
  for (const auto& r : results) {
    const nlohmann::json vs = r.contains("variants") ? r["variants"]
                                                      : nlohmann::json::array({r});
    for (size_t v = 0; v < vs.size(); ++v) {
      const auto& x = vs[v];
      std::printf("batch %4lld %-5s: KV cache %8.1f words/s", (long long)r["batch"].get<int64_t>(),
                  weights[v].c_str(), x["cached"]["words_per_s"].get<double>());
      if (x.contains("uncached"))
        std::printf(", no cache %8.1f words/s, cache %.2fx", x["uncached"]["words_per_s"].get<double>(),
                    x["cache_speedup"].get<double>());
      if (v > 0)
        std::printf(", %.2fx %s", x["cached_speedup_vs_" + weights[0]].get<double>(), weights[0].c_str());
      std::printf(", WER %.2f%% PER %.2f%%", x["wer"].get<double>(), x["per"].get<double>());
      if (x.contains("words_equal_f32"))
        std::printf(", %lld of %lld words as F32", (long long)x["words_equal_f32"].get<int64_t>(),
                    (long long)r["words"].get<int64_t>());
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_passive_omp_wait(argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "translate_bench: %s\n", e.what());
    return 1;
  }
}
