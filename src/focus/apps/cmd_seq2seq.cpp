// Sequence-to-sequence commands: `focus train --task g2p|translate` (called by cmd_train),
// `focus eval` on a seq2seq model file (WER/PER and the worst errors for g2p, BLEU/chrF for a
// translation TSV), and `focus translate` (lines from stdin or --input; n-best with scores).
// All three run the Translator (infer/translator.hpp). Bad input lines (empty, unknown symbols, too
// long: its checks) get one error line each on stderr naming the line; the rest is still
// translated, and the exit status is 1 if any line failed.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "focus/apps/commands.hpp"
#include "focus/dist/communicator.hpp"
#include "focus/infer/translator.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/cmudict.hpp"
#include "focus/text/metrics.hpp"
#include "focus/text/strings.hpp"
#include "focus/train/seq2seq_trainer.hpp"

namespace focus {

namespace {

// Prints the test metrics of the translator's model on `groups` with greedy and beam search.
nlohmann::json evaluate_file(const Translator& tr, const std::vector<RefGroup>& groups, int beam,
                             double length_penalty, int worst, bool print) {
  const std::string& task = tr.task();
  nlohmann::json j;
  for (int b : beam > 1 ? std::vector<int>{1, beam} : std::vector<int>{1}) {
    SearchOptions so;
    so.beam = b;
    so.length_penalty = length_penalty;
    const CorpusScore s = tr.score(groups, so);
    const std::string key = b == 1 ? "greedy" : "beam" + std::to_string(b);
    j[key] = {{"sentences", s.sentences}, {"seconds", s.seconds},
              {"sentences_per_s", double(s.sentences) / std::max(1e-9, s.seconds)}};
    if (task == "g2p") {
      j[key]["wer"] = s.wer;
      j[key]["per"] = s.per;
    } else {
      j[key]["bleu"] = s.bleu;
      j[key]["chrf"] = s.chrf;
    }
    if (print)
      std::printf(task == "g2p" ? "%-8s WER %6.2f%%  PER %5.2f%%  (%lld words, %.0f words/s)\n"
                                  : "%-8s BLEU %6.2f  chrF %6.2f  (%lld sentences, %.0f sentences/s)\n",
                  key.c_str(), task == "g2p" ? s.wer : s.bleu, task == "g2p" ? s.per : s.chrf,
                  (long long)s.sentences, double(s.sentences) / std::max(1e-9, s.seconds));
    if (b != (beam > 1 ? beam : 1) || worst <= 0 || task != "g2p") continue;
    // The worst errors of the last search: largest edit distance to the closest reference.
    const auto errs = worst_errors(s.hyps, groups, size_t(worst));
    nlohmann::json list = nlohmann::json::array();
    if (print) std::printf("\n%d worst errors (%s): word | hypothesis | references | edits\n", worst, key.c_str());
    for (const HypothesisError& e : errs) {
      const RefGroup& g = groups[e.index];
      list.push_back({{"word", g.source}, {"hyp", s.hyps[e.index]}, {"refs", g.refs}, {"edits", e.edits}});
      if (!print) continue;
      std::string refs;
      for (const auto& r : g.refs) refs += (refs.empty() ? "" : " / ") + r;
      std::printf("  %-18s | %-28s | %s | %lld\n", g.source.c_str(), s.hyps[e.index].c_str(), refs.c_str(),
                  (long long)e.edits);
    }
    j["worst"] = list;
  }
  return j;
}

}  // namespace

int train_seq2seq_and_report(const TrainConfig& cfg_in) {
  TrainConfig cfg = cfg_in;
  validate(cfg);
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  Communicator& comm = world();  // mpirun: MPI's ranks; else this process alone
  const bool root = comm.rank() == 0;
  report_ranks(comm);
  if (root)
    std::fprintf(stderr, "focus: %d threads, GEMM: %s\n", num_threads(), gemm_backend_info().c_str());
  const Seq2SeqTaskData data = load_seq2seq_data(cfg);
  std::vector<std::string> src_text, tgt_text;
  for (const auto& p : data.train.pairs) {
    src_text.push_back(p.source);
    tgt_text.push_back(p.target);
  }
  TokenizerOptions to;
  to.bpe_merges = cfg.bpe_merges;
  const auto src_tok = train_tokenizer(cfg.src_tokenizer, src_text, to);
  const auto tgt_tok = train_tokenizer(cfg.tgt_tokenizer, tgt_text, to);
  // Model: the config's hyper-parameters, vocabularies from the tokenizers, max_len from the data
  // unless given.
  nlohmann::json mc = nlohmann::json::parse(cfg.model_config);
  mc["src_vocab"] = src_tok->vocab().size();
  mc["tgt_vocab"] = tgt_tok->vocab().size();
  constexpr int64_t kLongest = 1024;  // positions when the data sets max_len
  const bool given = mc.contains("max_len");
  EncodedPairs train = encode_pairs(data.train.pairs, *src_tok, *tgt_tok,
                                    given ? seq2seq_config_from_json(mc).max_len : kLongest);
  if (!given) {
    int64_t longest = 1;
    for (size_t i = 0; i < train.src.size(); ++i)
      longest = std::max({longest, int64_t(train.src[i].size()), int64_t(train.tgt[i].size()) + 1});
    mc["max_len"] = std::min<int64_t>(kLongest, longest + longest / 4 + 4);
  }
  Rng rng(cfg.seed);
  Seq2Seq model(seq2seq_config_from_json(mc), rng);
  const int64_t max_len = model.config().max_len;
  const EncodedPairs dev = encode_pairs(data.dev.pairs, *src_tok, *tgt_tok, max_len);
  if (root) std::fprintf(stderr,
               "focus: task %s, transformer %lld parameters (vocab %lld -> %lld, max_len %lld); "
               "%zu training pairs (%lld skipped), %zu validation %s\n",
               cfg.task.c_str(), (long long)model.num_parameters(), (long long)src_tok->vocab().size(),
               (long long)tgt_tok->vocab().size(), (long long)max_len, train.src.size(),
               (long long)train.skipped, data.dev.groups.size(), cfg.task == "g2p" ? "words" : "sentences");
  const nlohmann::json meta = {{"keep_stress", cfg.keep_stress}};
  Seq2SeqTrainer trainer(cfg, model, *src_tok, *tgt_tok, train, dev, data.dev.groups, meta, &comm);
  if (already_trained(trainer.start_epoch(), cfg.epochs, root)) return 1;
  const auto history = trainer.fit();
  if (!root) return 0;  // rank 0 evaluates the saved model and reports
  const std::string best = cfg.out + "/model_best.safetensors";
  const double minutes = history.empty() ? 0 : history.back().value("train_seconds_total", 0.0) / 60;
  std::printf("trained %zu epochs, %.1f min of training\n", history.size(), minutes);
  if (!data.test.groups.empty()) {
    const Translator tr(best);
    std::printf("test set (%zu %s), best model:\n", data.test.groups.size(),
                cfg.task == "g2p" ? "words" : "sentences");
    nlohmann::json j = evaluate_file(tr, data.test.groups, cfg.beam, cfg.length_penalty, 0, true);
    j["train_minutes"] = minutes;
    write_file_atomic(cfg.out + "/test_metrics.json", j.dump(2) + "\n");
  }
  std::printf("model:   %s\nmetrics: %s/metrics.jsonl\nresume:  %s/checkpoint_last.safetensors\n",
              best.c_str(), cfg.out.c_str(), cfg.out.c_str());
  return 0;
}

// auto: f32 (a seq2seq file carries no int8 plan from `focus quantize`).
DType weights_dtype(const std::string& weights) {
  return weights == "bf16" ? DType::BF16 : weights == "int8" ? DType::I8 : DType::F32;
}

void add_weights_option(CLI::App* sub, std::string& weights) {
  sub->add_option("--weights", weights,
                  "inference weights: f32; bf16 (seq2seq models: decoding up to 16 rows streams "
                  "half the bytes; results within bf16 rounding); int8 (int8 weights per output "
                  "channel, activations per row: image models for the layers of the file's plan "
                  "from `focus quantize`, else every Linear and Conv2d; seq2seq models every "
                  "Linear of encoder and decoder and the output projection); auto (int8 for a "
                  "file `focus quantize` wrote, else f32)")
      ->check(CLI::IsMember({"f32", "bf16", "int8", "auto"}))
      ->capture_default_str();
}

int eval_seq2seq(const std::string& model_path, const std::string& task, const std::string& split,
                 const std::string& input, const std::string& cmudict, int beam,
                 double length_penalty, int worst, bool json, const std::string& weights) {
  const Translator tr(model_path, {.weights = weights_dtype(weights)});
  FOCUS_CHECK(task.empty() || task == tr.task(), ValueError, "--task {}: '{}' is a {} model", task,
              model_path, tr.task());
  std::vector<RefGroup> groups;
  if (!input.empty()) {
    groups = group_references(load_tsv(input));
  } else {
    FOCUS_CHECK(tr.task() == "g2p", ValueError,
                "a {} model needs --input FILE (a source<TAB>target TSV) to evaluate on", tr.task());
    const bool stress = tr.extra().value("keep_stress", false);
    const SplitPart want = split == "dev" ? SplitPart::Dev : SplitPart::Test;
    for (const DictEntry& e :
         load_cmudict(cmudict.empty() ? default_cmudict_path() : cmudict, stress))
      if (split_of(e.word) == want) groups.push_back({tr.normalize(e.word), e.prons});
  }
  FOCUS_CHECK(!groups.empty(), ValueError, "nothing to evaluate on");
  if (!json) std::printf("%s: %s, %zu %s, %s weights\n", model_path.c_str(), input.empty() ? split.c_str() : input.c_str(),
                         groups.size(), tr.task() == "g2p" ? "words" : "sentences",
                         weights == "auto" ? "f32" : weights.c_str());
  nlohmann::json j = evaluate_file(tr, groups, beam, length_penalty, worst, !json);
  j["weights"] = weights == "auto" ? "f32" : weights;
  if (json) std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

Command add_translate_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "translate", "translate lines (g2p: words to phones) with a seq2seq model; reads stdin or --input");
  struct Opts {
    std::string model, input, weights = "f32";
    int beam = 5, nbest = 1, max_len = 0, threads = 0;
    double length_penalty = 1.0;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "model file (.safetensors)")->required();
  sub->add_option("--input", o->input, "text file, one input per line (default: stdin)");
  sub->add_option("--beam", o->beam, "beam size (1 = greedy)")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--nbest", o->nbest, "hypotheses per input")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--length-penalty", o->length_penalty, "score = log p / length^alpha")->capture_default_str();
  sub->add_option("--max-len", o->max_len, "longest output in tokens (0 = the model's)");
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  add_weights_option(sub, o->weights);
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    FOCUS_CHECK(o->nbest <= o->beam, ValueError, "--nbest {} must not exceed --beam {}", o->nbest, o->beam);
    const Translator tr(o->model, {.weights = weights_dtype(o->weights)});
    std::ifstream file;
    if (!o->input.empty()) {
      file.open(o->input);
      FOCUS_CHECK(file.good(), IOError, "cannot open --input '{}'", o->input);
    }
    std::istream& in = o->input.empty() ? std::cin : file;
    const bool interactive = o->input.empty() && isatty(0);
    SearchOptions so;
    so.beam = o->beam;
    so.nbest = o->nbest;
    so.length_penalty = o->length_penalty;
    so.max_len = o->max_len;
    int failed = 0;
    std::string line;
    // Lines that pass the translator's checks are decoded together in chunks (batched search);
    // errors are reported in order.
    std::vector<std::string> texts;
    std::vector<std::vector<int64_t>> sources;  // texts[i] as encode() checked it
    auto flush = [&] {
      if (texts.empty()) return;
      for (const Translation& t : tr.translate_encoded(texts, sources, so)) {
        for (const TranslationHypothesis& h : t.nbest)
          std::printf("%s\t%s\t%.4f\n", t.input.c_str(), h.text.c_str(), h.score);
        if (o->nbest > 1) std::printf("\n");
      }
      std::fflush(stdout);
      texts.clear();
      sources.clear();
    };
    for (int64_t n = 1;; ++n) {
      if (interactive) std::fprintf(stderr, "> ");
      if (!std::getline(in, line)) break;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      try {
        sources.push_back(tr.encode(line));
        texts.push_back(line);
      } catch (const InputError& e) {
        flush();  // keep the output in input order
        ++failed;
        std::fprintf(stderr, "focus: line %lld: %s; skipped\n", (long long)n, e.reason().c_str());
      }
      if (interactive || texts.size() >= 256) flush();
    }
    flush();
    return failed ? 1 : 0;
  };
}

}  // namespace focus
