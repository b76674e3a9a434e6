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
// --weights bf16 decodes with bf16 inference weights (Module::set_inference_dtype); the words
// whose output equals the F32 model's are counted (words_equal_f32).
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
#include "focus/ops/index.hpp"
#include "focus/tensor/error.hpp"
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

int run(int argc, char** argv) {
  CLI::App app{"focus translation decoding benchmark: words/s with and without the KV caches"};
  std::string model_path, cmudict, dump, weights = "f32";
  std::vector<int64_t> batches = {1, 64};
  int64_t words = 1000;
  int reps = 3, threads = 0;
  bool json = false;
  app.add_option("--model", model_path, "a focus seq2seq model file (g2p)")->required();
  app.add_option("--cmudict", cmudict, "CMUdict dict.txt (default: the data cache)");
  app.add_option("--words", words, "test-split words decoded")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", batches, "batches, comma-separated")->delimiter(',')->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--reps", reps, "timed passes per path")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--threads", threads, "threads (0 = policy)");
  app.add_option("--weights", weights, "inference weights: f32 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_flag("--json", json, "print JSON");
  app.add_option("--dump-sources", dump,
                 "write the source ids and focus's greedy outputs (JSON) for translate_torch.py");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);

  Seq2SeqModelFile f = load_seq2seq(model_path);
  FOCUS_CHECK(f.task == "g2p", ValueError, "translate_bench: {} is a '{}' model; it needs a g2p model",
              model_path, f.task);
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

  FOCUS_CHECK(dump.empty() || weights == "f32", ValueError,
              "translate_bench: --dump-sources needs --weights f32 (the PyTorch twin runs F32)");
  Outputs f32_outputs;  // --weights bf16: the F32 model's greedy outputs
  if (weights == "bf16") {
    f32_outputs = decode_all(*f.model, src, 64, greedy_cached);
    f.model->set_inference_dtype(DType::BF16);
  }

  nlohmann::json results = nlohmann::json::array();
  for (const int64_t batch : batches) {
    // Verify: the two paths agree on every word.
    const Outputs cached = decode_all(*f.model, src, batch, greedy_cached);
    const Outputs uncached = decode_all(*f.model, src, batch, greedy_uncached);
    for (size_t i = 0; i < src.size(); ++i)
      FOCUS_CHECK(cached[i] == uncached[i], StateError,
                  "translate_bench: batch {} word {} ('{}'): cached and uncached greedy outputs differ",
                  batch, i, data.test.groups[i].source);
    if (!dump.empty() && results.empty())
      write_file_atomic(dump, nlohmann::json{{"sources", src}, {"outputs", cached}}.dump());
    int64_t out_tokens = 0;
    for (const auto& o : cached) out_tokens += int64_t(o.size());
    nlohmann::json r = {{"batch", batch}, {"words", src.size()}, {"output_tokens", out_tokens}};
    if (!f32_outputs.empty()) {
      int64_t same = 0;
      for (size_t i = 0; i < src.size(); ++i) same += cached[i] == f32_outputs[i];
      r["words_equal_f32"] = same;
    }
    for (const auto& [name, dec] : {std::pair<const char*, Decoder>{"cached", greedy_cached},
                                    std::pair<const char*, Decoder>{"uncached", greedy_uncached}}) {
      std::vector<double> t;
      for (int k = 0; k < reps; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        decode_all(*f.model, src, batch, dec);
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      const double s = median(t);
      r[name] = {{"median_s", s}, {"words_per_s", double(src.size()) / s},
                 {"tokens_per_s", double(out_tokens) / s}};
    }
    r["cache_speedup"] = r["uncached"]["median_s"].get<double>() / r["cached"]["median_s"].get<double>();
    results.push_back(r);
  }
  if (json) {
    std::printf("%s\n", nlohmann::json{{"model", model_path},
                                       {"threads", num_threads()},
                                       {"weights", weights},
                                       {"source_tokens", src_tokens},
                                       {"results", results}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::printf("focus translate_bench: %s, %zu test words (%lld source tokens), %s weights, %d "
              "threads, greedy\n",
              model_path.c_str(), src.size(), (long long)src_tokens, weights.c_str(), num_threads());
  std::printf("  cached and uncached outputs agree on every word\n");
  for (const auto& r : results)
    std::printf("batch %4lld: KV cache %8.1f words/s, no cache %8.1f words/s, cache %.2fx\n",
                (long long)r["batch"].get<int64_t>(), r["cached"]["words_per_s"].get<double>(),
                r["uncached"]["words_per_s"].get<double>(), r["cache_speedup"].get<double>());
  for (const auto& r : results)
    if (r.contains("words_equal_f32"))
      std::printf("batch %4lld: %lld of %lld words decode as with the F32 weights\n",
                  (long long)r["batch"].get<int64_t>(), (long long)r["words_equal_f32"].get<int64_t>(),
                  (long long)r["words"].get<int64_t>());
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
