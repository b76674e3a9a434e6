// Data-parallel micro-batches (train/data_parallel.hpp): with one thread per op, 1 and 2 workers
// give the same gradients bit for bit, dropout on; the masks follow the salt; a failing
// micro-batch is rethrown and adds nothing. In the trainer: --data-parallel equals gradient
// accumulation over the same micro-batches (no dropout, F64) and resumes bit for bit (dropout on);
// image tasks take --data-parallel too. Across processes: tests/apps/mpi_train_test.cpp.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "../data/temp_dir.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/data_parallel.hpp"
#include "focus/train/seq2seq_trainer.hpp"

using namespace focus;

namespace {

// Sources "abcde..." strings, targets their reversals, as token ids (pad 0, <s> 1, </s> 2).
struct Batch {
  Tensor src, src_len, tgt_in, tgt_out;
};

Batch batch(int64_t B, int64_t L, uint64_t seed) {
  Rng rng(seed);
  std::vector<int64_t> src(static_cast<size_t>(B * L)), len(static_cast<size_t>(B)),
      in(static_cast<size_t>(B * (L + 1))), out(static_cast<size_t>(B * (L + 1)));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = 2 + rng.randint(L - 1);
    len[size_t(b)] = n;
    in[size_t(b * (L + 1))] = 1;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t tok = 3 + rng.randint(5);
      src[size_t(b * L + i)] = tok;
      in[size_t(b * (L + 1) + n - i)] = tok;
      out[size_t(b * (L + 1) + n - 1 - i)] = tok;
    }
    out[size_t(b * (L + 1) + n)] = 2;
  }
  return {Tensor::from_vector(src, {B, L}), Tensor::from_vector(len, {B}),
          Tensor::from_vector(in, {B, L + 1}), Tensor::from_vector(out, {B, L + 1})};
}

Seq2SeqConfig tiny(double dropout) {
  Seq2SeqConfig c;
  c.src_vocab = c.tgt_vocab = 8;
  c.d_model = 32;
  c.n_enc_layers = c.n_dec_layers = 1;
  c.n_heads = 2;
  c.d_ff = 64;
  c.max_len = 16;
  c.dropout = dropout;
  return c;
}

// Gradients of the mean loss over `parts` row groups of `b`, run by run_micro_batches.
std::vector<float> grads(Seq2Seq& m, const Batch& b, int64_t parts, int workers, uint64_t salt,
                         int64_t fail_at = -1) {
  for (Tensor p : m.parameters()) p.zero_grad();
  const int64_t B = b.src.size(0);
  run_micro_batches(parts, workers, salt, [&](int64_t i) {
    if (i == fail_at) throw ValueError("micro-batch " + std::to_string(i) + " fails");
    const int64_t lo = i * B / parts, hi = (i + 1) * B / parts;
    Tensor loss = m.loss(b.src.slice(0, lo, hi).contiguous(), b.src_len.slice(0, lo, hi).contiguous(),
                         b.tgt_in.slice(0, lo, hi).contiguous(), b.tgt_out.slice(0, lo, hi).contiguous(), 0.1);
    loss.backward();
    return loss.item();
  });
  std::vector<float> out;
  for (const Tensor& p : m.parameters()) {
    if (!p.grad().defined()) continue;
    for (float v : p.grad().to_vector<float>()) out.push_back(v);
  }
  return out;
}

struct ThreadsGuard {
  int saved = num_threads();
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved); }
};

}  // namespace

TEST(DataParallel, WorkersDoNotChangeTheBitsAndMasksFollowTheSalt) {
  ThreadsGuard one(1);  // every op single-threaded, in and out of the workers
  Rng rng(3);
  Seq2Seq m(tiny(0.3), rng);
  m.train();
  const Batch b = batch(12, 7, 5);
  const auto g1 = grads(m, b, 3, 1, 42), g2 = grads(m, b, 3, 2, 42), g3 = grads(m, b, 3, 3, 42);
  ASSERT_FALSE(g1.empty());
  EXPECT_EQ(g1, g2);
  EXPECT_EQ(g1, g3);
  EXPECT_NE(g1, grads(m, b, 3, 2, 43));  // another salt: other dropout masks
}

TEST(DataParallel, AFailingMicroBatchIsRethrownAndAddsNothing) {
  Rng rng(3);
  Seq2Seq m(tiny(0.0), rng);
  const Batch b = batch(8, 5, 6);
  EXPECT_THROW(grads(m, b, 4, 2, 1, /*fail_at=*/2), ValueError);
  for (const Tensor& p : m.parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_THROW(run_micro_batches(2, 0, 1, [](int64_t) { return 0.0; }), ValueError);
}

TEST(DataParallel, TrainerEqualsAccumulationOverTheSameMicroBatches) {
  // --data-parallel with 2 threads and --accum 1 splits each batch in 2, as --accum 2 does.
  ThreadsGuard two(2);
  Rng data_rng(1);
  std::vector<TextPair> pairs;
  for (int i = 0; i < 40; ++i) {
    std::string s;
    for (int64_t j = 0, n = 2 + data_rng.randint(5); j < n; ++j) s += char('a' + data_rng.randint(5));
    pairs.push_back({s, std::string(s.rbegin(), s.rend())});
  }
  std::vector<std::string> a, t;
  for (const auto& p : pairs) {
    a.push_back(p.source);
    t.push_back(p.target);
  }
  const auto src_tok = train_tokenizer("char", a), tgt_tok = train_tokenizer("char", t);
  const EncodedPairs enc = encode_pairs(pairs, *src_tok, *tgt_tok, 16);
  std::vector<std::vector<double>> params;
  for (const bool dp : {false, true}) {
    focus::testing::TempDir dir;
    Seq2SeqConfig mc = tiny(0.0);
    mc.src_vocab = src_tok->vocab().size();
    mc.tgt_vocab = tgt_tok->vocab().size();
    Rng rng(11);
    Seq2Seq m(mc, rng);
    m.to(DType::F64);
    TrainConfig c = with_task_defaults([] {
      TrainConfig x;
      x.task = "translate";
      x.train_file = x.valid_file = "unused";
      return x;
    }());
    c.src_tokenizer = c.tgt_tokenizer = "char";
    c.out = dir.str();
    c.accum = dp ? 1 : 2;
    c.data_parallel = dp;
    Seq2SeqTrainer tr(c, m, *src_tok, *tgt_tok, enc, enc, group_references(pairs));
    std::vector<int64_t> idx(20);
    for (int64_t i = 0; i < 20; ++i) idx[size_t(i)] = i;
    tr.train_step(make_batch(enc, idx));
    tr.train_step(make_batch(enc, idx));
    std::vector<double> flat;
    for (const Tensor& p : m.parameters())
      for (double v : p.to_vector<double>()) flat.push_back(v);
    params.push_back(flat);
  }
  ASSERT_EQ(params[0].size(), params[1].size());
  double worst = 0;
  for (size_t i = 0; i < params[0].size(); ++i)
    worst = std::max(worst, std::abs(params[0][i] - params[1][i]));
  EXPECT_LT(worst, 1e-10);
  EXPECT_NO_THROW(validate(with_task_defaults([] {
    TrainConfig x;
    x.data_parallel = true;  // an image task: parts per thread too (train/distributed.hpp)
    return x;
  }())));
}
