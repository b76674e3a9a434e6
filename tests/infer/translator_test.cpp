// Translator: input checks (one InputError per bad item, naming it and the problem), batched
// answers equal to single ones (greedy and beam, n-best, several length buckets, bf16 and int8
// weights), int8 weights really running (every Linear int8, the decoder's one-token KV-cache
// steps and the tied projection off F32 by a bounded amount, translations close to F32's),
// the same hypotheses as the searches run directly on one sentence, scoring equal to
// score_corpus, and the `focus translate` CLI printing exactly the Translator's answers for a
// model trained in the test.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "apps/reverse_task.hpp"
#include "data/temp_dir.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/translator.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/nn/linear.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"
#include "support/run_command.hpp"

namespace focus {
namespace {

using testing::expect_error;

// The inputs of the batching tests: lengths 1 to 8 (the model's max_len), some repeated.
const std::vector<std::string> kInputs = {"abc", "a", "cabbca", "bb", "abcabcab", "c", "abc", "ba"};

void expect_same(const Translation& a, const Translation& b, const std::string& what) {
  EXPECT_EQ(a.input, b.input) << what;
  ASSERT_EQ(a.nbest.size(), b.nbest.size()) << what << " " << a.input;
  for (size_t k = 0; k < a.nbest.size(); ++k) {
    EXPECT_EQ(a.nbest[k].tokens, b.nbest[k].tokens) << what << " " << a.input << " #" << k;
    EXPECT_EQ(a.nbest[k].text, b.nbest[k].text) << what;
    EXPECT_EQ(a.nbest[k].finished, b.nbest[k].finished) << what;
    EXPECT_NEAR(a.nbest[k].score, b.nbest[k].score, 1e-4) << what << " " << a.input;
    EXPECT_NEAR(a.nbest[k].log_prob, b.nbest[k].log_prob, 1e-4) << what << " " << a.input;
  }
}

TEST(Translator, InputErrorsNameTheItem) {
  const Translator tr(testing::tiny_seq2seq());
  const auto reason = [&](const std::string& text, size_t index) -> std::string {
    try {
      tr.encode(text, index);
    } catch (const InputError& e) {
      EXPECT_EQ(e.index(), index);
      EXPECT_NE(std::string(e.what()).find("input " + std::to_string(index) + ": "), std::string::npos);
      return e.reason();
    }
    return "accepted";
  };
  EXPECT_EQ(reason("", 0), "empty input");
  EXPECT_EQ(reason(" \t ", 4), "empty input");
  EXPECT_EQ(reason("abz#", 1), "unknown symbols 'z', '#' (the model knows 3 symbols)");
  EXPECT_EQ(reason("abcabcabc", 2), "9 tokens, over the maximum length 8");
  EXPECT_EQ(reason("abcabcab", 3), "accepted");
  EXPECT_EQ(tr.encode("cab"), tr.source_tokenizer().encode("cab"));
  // A batch with one bad item decodes nothing and names that item.
  expect_error<InputError>([&] { tr.translate({"abc", "ba", "aXb"}, {}); },
                           {"input 2: unknown symbols 'X'"});
  expect_error<InputError>([&] { tr.translate({"abc", ""}, {}); }, {"input 1: empty input"});
  SearchOptions bad;
  bad.beam = 2;
  bad.nbest = 3;
  expect_error<ValueError>([&] { tr.translate({"abc"}, bad); }, {"nbest 3", "beam 2"});
  EXPECT_TRUE(tr.translate({}, {}).empty());
}

TEST(Translator, BatchedEqualsSingle) {
  for (DType weights : {DType::F32, DType::BF16, DType::I8}) {
    for (int64_t beam : {1, 3}) {
      SearchOptions so;
      so.beam = beam;
      so.nbest = beam;
      // max_tokens 8: several length buckets; the default: one batch.
      for (int64_t max_tokens : {int64_t(8), int64_t(4096)}) {
        const Translator tr(testing::tiny_seq2seq(), {.weights = weights, .max_tokens = max_tokens});
        const auto all = tr.translate(kInputs, so);
        ASSERT_EQ(all.size(), kInputs.size());
        for (size_t i = 0; i < kInputs.size(); ++i) {
          const std::string what = fmt::format("{} beam {} max_tokens {}", dtype_name(weights), beam, max_tokens);
          EXPECT_EQ(all[i].nbest.size(), size_t(beam)) << what;
          expect_same(all[i], tr.translate({kInputs[i]}, so)[0], what);
        }
      }
    }
  }
}

// The logits of the decoder's incremental path: the sources of kInputs[0..3] encoded, then three
// one-token steps (rows of one token each: the KV caches' few-row products), concatenated.
std::vector<float> step_logits(const Translator& tr) {
  NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> src;
  for (size_t i = 0; i < 4; ++i) src.push_back(tr.encode(kInputs[i]));
  Tensor s, len;
  make_source_batch(src, {0, 1, 2, 3}, s, len);
  Seq2Seq& m = tr.model();
  Seq2SeqDecodeState state = m.start_decoding(m.encode(s, len), len);
  std::vector<float> out;
  for (int64_t tok : {Seq2Seq::kBos, int64_t(4), int64_t(5)}) {
    const Tensor t = Tensor::from_vector(std::vector<int64_t>(4, tok), {4, 1});
    const std::vector<float> l = m.decode_step(t, state).to_vector<float>();  // (4, 1, V)
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

// ||a - b|| / ||a||.
double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(a[i]) * a[i];
  }
  return std::sqrt(num / den);
}

TEST(Translator, Int8WeightsRunEveryLinearAndTheDecoderSteps) {
  const Translator f32(testing::tiny_seq2seq());
  const Translator i8(testing::tiny_seq2seq(), {.weights = DType::I8});
  const Translator i8_f32_out(testing::tiny_seq2seq(), {.weights = DType::I8, .int8_output = false});
  // Every Linear of encoder and decoder runs int8 (1 + 1 layers: 4 + 2 and 4 + 4 + 2).
  std::vector<std::string> linears;
  for (const auto& [name, m] : f32.model().named_modules())
    if (dynamic_cast<const Linear*>(m)) linears.push_back(name);
  EXPECT_EQ(linears.size(), 16u);
  EXPECT_EQ(i8.int8_layers(), linears);
  EXPECT_EQ(i8_f32_out.int8_layers(), linears);
  EXPECT_TRUE(f32.int8_layers().empty());
  EXPECT_TRUE(Translator(testing::tiny_seq2seq(), {.weights = DType::BF16}).int8_layers().empty());
  EXPECT_EQ(i8.weights(), DType::I8);

  // The one-token steps differ from F32 (the int8 products ran) by a bounded amount: int8 per
  // channel and per row keeps each product within ~1% here.
  const std::vector<float> a = step_logits(f32), b = step_logits(i8), c = step_logits(i8_f32_out);
  ASSERT_EQ(a.size(), b.size());
  const double err = rel_l2(a, b), err_f32_out = rel_l2(a, c);
  EXPECT_GT(err, 1e-4) << "int8 logits equal to F32's: the int8 path did not run";
  EXPECT_LT(err, 0.03);
  EXPECT_GT(err_f32_out, 1e-4);
  EXPECT_LT(err_f32_out, 0.03);
  // The tied output projection is int8 too unless int8_output is false.
  EXPECT_GT(rel_l2(b, c), 1e-5) << "the output projection did not change with int8_output";
  EXPECT_EQ(step_logits(i8), b) << "int8 decoding is not deterministic";

  // Translations: the same best hypothesis on most inputs, scores close.
  for (int64_t beam : {1, 3}) {
    SearchOptions so;
    so.beam = beam;
    const auto want = f32.translate(kInputs, so), got = i8.translate(kInputs, so);
    size_t same = 0;
    for (size_t i = 0; i < kInputs.size(); ++i) {
      same += got[i].nbest[0].tokens == want[i].nbest[0].tokens;
      if (got[i].nbest[0].tokens == want[i].nbest[0].tokens) {
        EXPECT_NEAR(got[i].nbest[0].score, want[i].nbest[0].score, 0.05) << kInputs[i];
      }
    }
    EXPECT_GE(same, kInputs.size() - 1) << "beam " << beam;
  }
}

TEST(Translator, EqualsTheSearchOnOneSentence) {
  // The pre-existing path (explain's): greedy / beam search on a (1, S) batch of the ids.
  const Translator tr(testing::tiny_seq2seq());
  for (int64_t beam : {1, 4}) {
    SearchOptions so;
    so.beam = beam;
    so.nbest = beam == 1 ? 1 : 2;
    const auto all = tr.translate(kInputs, so);
    for (size_t i = 0; i < kInputs.size(); ++i) {
      const std::vector<int64_t> ids = tr.source_tokenizer().encode(kInputs[i]);
      const int64_t S = int64_t(ids.size());
      const Tensor src = Tensor::from_vector(ids, {1, S});                      // (1, S)
      const Tensor len = Tensor::from_vector(std::vector<int64_t>{S}, {1});      // (1)
      const auto hyps = beam == 1 ? greedy_search(tr.model(), src, len, so)[0]
                                  : beam_search(tr.model(), src, len, so)[0];
      ASSERT_EQ(hyps.size(), all[i].nbest.size());
      for (size_t k = 0; k < hyps.size(); ++k) {
        EXPECT_EQ(all[i].nbest[k].tokens, hyps[k].tokens) << kInputs[i];
        EXPECT_EQ(all[i].nbest[k].text, tr.target_tokenizer().decode(hyps[k].tokens));
        EXPECT_NEAR(all[i].nbest[k].score, hyps[k].score, 1e-4);
      }
    }
  }
}

TEST(Translator, ScoreEqualsScoreCorpus) {
  const Translator tr(testing::tiny_seq2seq());
  const std::vector<RefGroup> groups = {{"abc", {"c b a"}}, {"ba", {"a b", "b a"}}, {"cab", {"b a c"}}};
  Seq2SeqModelFile f = testing::tiny_seq2seq();
  f.model->eval();
  const CorpusScore want = score_corpus(*f.model, "translate", *f.src_tok, *f.tgt_tok, groups, {});
  const CorpusScore got = tr.score(groups, {});
  EXPECT_EQ(got.hyps, want.hyps);
  EXPECT_DOUBLE_EQ(got.bleu, want.bleu);
  EXPECT_DOUBLE_EQ(got.chrf, want.chrf);
  EXPECT_EQ(tr.score(groups, {}, 2).sentences, 2);
}

TEST(Translator, TranslateCliPrintsTheTranslatorsAnswers) {
  // A model trained by the CLI on the reversal task, as tests/apps do.
  testing::TempDir dir;
  testing::write_reverse_task(dir.file("train.tsv"), dir.file("valid.tsv"));
  const auto t = testing::run_command(
      std::string(FOCUS_BINARY) + " train --task translate --train " + dir.file("train.tsv") +
      " --valid " + dir.file("valid.tsv") + " --src-tokenizer char --tgt-tokenizer char --epochs 2 "
      "--threads 1 --model-config '{\"d_model\":16,\"n_enc_layers\":1,\"n_dec_layers\":1,"
      "\"n_heads\":2,\"d_ff\":32}' --out " + dir.file("run"));
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string model = dir.file("run/model_best.safetensors");
  const std::vector<std::string> lines = {"abc", "ba", "cab", "aab", "c"};
  std::ofstream in(dir.file("in.txt"));
  for (const auto& l : lines) in << l << "\n";
  in.close();
  // A checkpoint is refused by the predictor as by the CLI.
  expect_error<FormatError>([&] { Translator x(dir.file("run/checkpoint_last.safetensors")); },
                            {"checkpoint_last.safetensors"});
  for (const char* weights : {"f32", "bf16", "int8"}) {
    const auto cli = testing::run_command("(" + std::string(FOCUS_BINARY) +
                                          " translate --threads 1 --beam 3 --nbest 2 --weights " +
                                          weights + " --model " + model + " --input " +
                                          dir.file("in.txt") + ") 2>/dev/null");
    ASSERT_EQ(cli.code, 0) << cli.out;
    const std::string w = weights;
    const Translator tr(model, {.weights = w == "bf16" ? DType::BF16 : w == "int8" ? DType::I8 : DType::F32});
    SearchOptions so;
    so.beam = 3;
    so.nbest = 2;
    std::string want;
    for (const Translation& r : tr.translate(lines, so)) {
      for (const auto& h : r.nbest) want += fmt::format("{}\t{}\t{:.4f}\n", r.input, h.text, h.score);
      want += "\n";
    }
    EXPECT_EQ(cli.out, want) << weights;
  }
}

}  // namespace
}  // namespace focus
