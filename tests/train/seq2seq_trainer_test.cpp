// Seq2Seq training by its invariants: k accumulation micro-batches equal one batch (token-weighted
// mean loss); resuming from a checkpoint equals the uninterrupted run bit for bit (dropout and
// shuffling on); a tiny reverse task learns to 100% exact match; model files round-trip with their
// tokenizers and reject other files with clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../data/temp_dir.hpp"
#include "../support/expect_error.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/seq2seq_trainer.hpp"

using namespace focus;

namespace {

// Strings over "abcde" of length 2..6 and their reversals ("translate" pairs).
std::vector<TextPair> reverse_pairs(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<TextPair> out;
  for (int64_t i = 0; i < n; ++i) {
    std::string s;
    const int64_t len = 2 + rng.randint(5);
    for (int64_t j = 0; j < len; ++j) s += char('a' + rng.randint(5));
    std::string r(s.rbegin(), s.rend());
    out.push_back({s, r});
  }
  return out;
}

struct Data {
  std::unique_ptr<Tokenizer> src, tgt;
  EncodedPairs train, dev;
  std::vector<RefGroup> groups;
};

Data make_data(int64_t n_train, int64_t n_dev) {
  Data s;
  const auto train = reverse_pairs(n_train, 1), dev = reverse_pairs(n_dev, 2);
  std::vector<std::string> a, b;
  for (const auto& p : train) {
    a.push_back(p.source);
    b.push_back(p.target);
  }
  s.src = train_tokenizer("char", a);
  s.tgt = train_tokenizer("char", b);
  s.train = encode_pairs(train, *s.src, *s.tgt, 16);
  s.dev = encode_pairs(dev, *s.src, *s.tgt, 16);
  s.groups = group_references(dev);
  return s;
}

Seq2SeqConfig tiny(const Data& s, double dropout) {
  Seq2SeqConfig c;
  c.src_vocab = s.src->vocab().size();
  c.tgt_vocab = s.tgt->vocab().size();
  c.d_model = 32;
  c.n_enc_layers = 1;
  c.n_dec_layers = 1;
  c.n_heads = 2;
  c.d_ff = 64;
  c.max_len = 16;
  c.dropout = dropout;
  return c;
}

TrainConfig config(const std::string& out) {
  TrainConfig c = with_task_defaults([] {
    TrainConfig t;
    t.task = "translate";
    t.train_file = t.valid_file = "unused";
    return t;
  }());
  c.src_tokenizer = c.tgt_tokenizer = "char";
  c.epochs = 2;
  c.max_tokens = 256;
  c.lr = 3e-3;
  c.warmup_epochs = 0.5;
  c.weight_decay = 0.0;
  c.out = out;
  c.seed = 3;
  return c;
}

std::vector<float> flat_params(const Module& m) {
  std::vector<float> out;
  for (const Tensor& p : m.parameters())
    for (float v : p.to_vector<float>()) out.push_back(v);
  return out;
}

}  // namespace

TEST(Seq2SeqTrainer, AccumulationEqualsOneBatch) {
  const Data s = make_data(64, 8);
  std::vector<std::vector<double>> params;
  for (int accum : {1, 3}) {
    focus::testing::TempDir dir;
    Rng rng(11);
    Seq2Seq m(tiny(s, 0.0), rng);
    m.to(DType::F64);
    TrainConfig c = config(dir.str());
    c.accum = accum;
    Seq2SeqTrainer t(c, m, *s.src, *s.tgt, s.train, s.dev, s.groups);
    std::vector<int64_t> idx(24);
    for (int64_t i = 0; i < 24; ++i) idx[size_t(i)] = i;
    const Seq2SeqBatch b = make_batch(s.train, idx);
    t.train_step(b);
    std::vector<double> flat;
    for (const Tensor& p : m.parameters())
      for (double v : p.to_vector<double>()) flat.push_back(v);
    params.push_back(flat);
  }
  ASSERT_EQ(params[0].size(), params[1].size());
  double worst = 0;
  for (size_t i = 0; i < params[0].size(); ++i) worst = std::max(worst, std::abs(params[0][i] - params[1][i]));
  EXPECT_LT(worst, 1e-10);
}

TEST(Seq2SeqTrainer, ResumeEqualsUninterrupted) {
  // Also with --data-parallel (2 threads; dropout masks from the per-micro-batch streams).
  const Data s = make_data(96, 8);
  for (const bool dp : {false, true}) {
  SCOPED_TRACE(dp ? "data-parallel" : "plain");
  focus::testing::TempDir a, b;
  TrainConfig c = config(a.str());
  c.ema = 0.9;
  c.data_parallel = dp;
  Rng r1(5);
  Seq2Seq full(tiny(s, 0.2), r1);
  Seq2SeqTrainer(c, full, *s.src, *s.tgt, s.train, s.dev, s.groups).fit();

  TrainConfig first = config(b.str());
  first.ema = 0.9;
  first.data_parallel = dp;
  Rng r2(5);
  Seq2Seq part(tiny(s, 0.2), r2);
  {
    Seq2SeqTrainer t(first, part, *s.src, *s.tgt, s.train, s.dev, s.groups);
    t.on_epoch = [&](const nlohmann::json& rec) {
      if (rec["epoch"] == 1) throw StateError("stop after epoch 1");
    };
    EXPECT_THROW(t.fit(), StateError);
  }
  Rng r3(99);  // different init: everything must come from the checkpoint
  Seq2Seq resumed(tiny(s, 0.2), r3);
  TrainConfig second = first;
  second.resume = b.file("checkpoint_last.safetensors");
  Seq2SeqTrainer t2(second, resumed, *s.src, *s.tgt, s.train, s.dev, s.groups);
  EXPECT_EQ(t2.start_epoch(), 1);
  t2.fit();
  EXPECT_EQ(flat_params(full), flat_params(resumed));
  const auto m1 = load_seq2seq(a.file("model_last.safetensors"));
  const auto m2 = load_seq2seq(b.file("model_last.safetensors"));
  EXPECT_EQ(flat_params(*m1.model), flat_params(*m2.model));  // the EMA weights too
  }
}

TEST(Seq2SeqTrainer, ReverseTaskLearnsToExactMatch) {
  const Data s = make_data(2000, 100);
  focus::testing::TempDir dir;
  TrainConfig c = config(dir.str());
  c.epochs = 60;
  c.max_tokens = 512;
  c.lr = 3e-3;
  c.warmup_epochs = 1;
  c.label_smoothing = 0.0;
  Rng rng(1);
  Seq2Seq m(tiny(s, 0.0), rng);
  Seq2SeqTrainer t(c, m, *s.src, *s.tgt, s.train, s.dev, s.groups);
  t.fit();
  m.eval();
  const CorpusScore r = score_corpus(m, "translate", *s.src, *s.tgt, s.groups, SearchOptions{});
  int64_t exact = 0;
  for (size_t i = 0; i < s.groups.size(); ++i) exact += r.hyps[i] == s.groups[i].refs[0];
  EXPECT_EQ(exact, int64_t(s.groups.size())) << "chrF " << r.chrf;
  EXPECT_NEAR(r.chrf, 100.0, 1e-9);
  // The last model file decodes the same.
  auto f = load_seq2seq(dir.file("model_last.safetensors"));
  EXPECT_EQ(f.task, "translate");
  EXPECT_EQ(f.src_tok->to_json(), s.src->to_json());
  const CorpusScore r2 = score_corpus(*f.model, f.task, *f.src_tok, *f.tgt_tok, s.groups, SearchOptions{});
  EXPECT_EQ(r2.hyps, r.hyps);
}

TEST(Seq2SeqTrainer, ModelFileErrors) {
  focus::testing::TempDir dir;
  focus::testing::expect_error<IOError>([&] { load_seq2seq(dir.file("missing.safetensors")); },
                                 {"missing.safetensors"});
  const Data s = make_data(16, 4);
  Rng rng(1);
  Seq2Seq m(tiny(s, 0.0), rng);
  save_seq2seq(dir.file("m.safetensors"), m, *s.src, *s.tgt, "translate");
  EXPECT_EQ(model_file_format(dir.file("m.safetensors")), "focus-seq2seq/1");
  // A model whose tokenizer does not match its vocabulary size.
  const auto other = train_tokenizer("char", {"xyzuvw"});
  save_seq2seq(dir.file("bad.safetensors"), m, *other, *s.tgt, "translate");
  focus::testing::expect_error<FormatError>([&] { load_seq2seq(dir.file("bad.safetensors")); },
                                     {"bad.safetensors", "tokenizers"});
}

TEST(Seq2SeqTrainer, KeepEpochsKeepsTheLastEpochsModels) {
  const Data s = make_data(32, 4);
  focus::testing::TempDir dir;
  TrainConfig c = config(dir.str());
  c.epochs = 3;
  c.keep_epochs = 2;
  c.ema = 0.9;
  Rng rng(1);
  Seq2Seq m(tiny(s, 0.0), rng);
  Seq2SeqTrainer(c, m, *s.src, *s.tgt, s.train, s.dev, s.groups).fit();
  EXPECT_FALSE(std::filesystem::exists(epoch_model_path(dir.str(), 1)));
  EXPECT_TRUE(std::filesystem::exists(epoch_model_path(dir.str(), 2)));
  EXPECT_EQ(epoch_model_path(dir.str(), 3), dir.file("model_epoch_003.safetensors"));
  const auto last = load_seq2seq(dir.file("model_last.safetensors"));
  const auto third = load_seq2seq(epoch_model_path(dir.str(), 3));
  EXPECT_EQ(flat_params(*last.model), flat_params(*third.model));  // the evaluated (EMA) weights
  const auto second = load_seq2seq(epoch_model_path(dir.str(), 2));
  EXPECT_NE(flat_params(*second.model), flat_params(*third.model));
}

TEST(Seq2SeqTrainer, AverageLastScoresTheAverageAndKeepsTheBetter) {
  const Data s = make_data(32, 4);
  focus::testing::TempDir dir;
  TrainConfig c = config(dir.str());
  c.epochs = 3;
  c.keep_epochs = 2;
  c.average_last = 3;
  Rng rng(1);
  Seq2Seq m(tiny(s, 0.0), rng);
  focus::testing::expect_error<ValueError>(
      [&] { Seq2SeqTrainer(c, m, *s.src, *s.tgt, s.train, s.dev, s.groups); },
      {"--average-last 3", "--keep-epochs (2)"});
  c.average_last = 2;
  Seq2SeqTrainer(c, m, *s.src, *s.tgt, s.train, s.dev, s.groups).fit();
  std::ifstream in(dir.file("average.json"));
  ASSERT_TRUE(in) << "no average.json";
  const nlohmann::json rec = nlohmann::json::parse(in);
  EXPECT_EQ(rec["averaged"], nlohmann::json({epoch_model_path(dir.str(), 2),
                                             epoch_model_path(dir.str(), 3)}));
  // The average is the mean of the two epochs' models, and scores as recorded.
  const auto e2 = load_seq2seq(epoch_model_path(dir.str(), 2));
  const auto e3 = load_seq2seq(epoch_model_path(dir.str(), 3));
  const auto avg = load_seq2seq(dir.file("model_avg.safetensors"));
  const auto a = flat_params(*e2.model), b = flat_params(*e3.model), v = flat_params(*avg.model);
  ASSERT_EQ(v.size(), a.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], 0.5f * (a[i] + b[i]), 1e-6f) << i;
  const CorpusScore sc = score_corpus(*avg.model, "translate", *avg.src_tok, *avg.tgt_tok,
                                      s.groups, SearchOptions{});
  EXPECT_DOUBLE_EQ(rec["val_primary"].get<double>(), sc.primary);
  // model_best is the average exactly when the average scored better than every epoch.
  const auto best = load_seq2seq(dir.file("model_best.safetensors"));
  EXPECT_EQ(rec["kept_as_best"].get<bool>(), flat_params(*best.model) == v);
  EXPECT_EQ(rec["kept_as_best"].get<bool>(),
            sc.primary < rec["best_epoch_val_primary"].get<double>());
}
