// DecoderLM: cached decoding against full recomputation token by token (logits, F32 to 1e-5 and
// F64 to 1e-12), for a batch of prompts of different lengths, learned and sinusoidal positions;
// prefill in one call against one token at a time; generate against generate_uncached (greedy
// and sampling) and against argmax of forward(); a reordered cache; causality of forward();
// bf16 inference weights (cached = full, close to F32); parameter names; errors.
//   Letters: B batch, P prompt length, L sequence, V vocabulary.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/autograd/node.hpp"
#include "focus/models/decoder_lm.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;

namespace {

DecoderLMConfig small_config(const std::string& positions = "learned") {
  DecoderLMConfig c;
  c.vocab = 50;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.d_ff = 64;
  c.max_len = 40;
  c.positions = positions;
  return c;
}

using focus::testing::max_abs_diff;

Tensor ids(std::vector<int64_t> v, Shape s) { return Tensor::from_vector(v, s); }

std::vector<int64_t> random_tokens(int64_t n, int64_t vocab, Rng& rng) {
  std::vector<int64_t> t(n);
  for (auto& x : t) x = rng.randint(vocab);
  return t;
}

}  // namespace

// Three sequences with prompts of 3, 6 and 1 tokens, prefilled in one padded call, then 8 tokens
// one at a time: the logits of every position equal forward() over that sequence alone.
void check_cached_equals_full(DType dtype, const std::string& positions, double tol,
                              bool bf16_weights = false) {
  Rng rng(7);
  DecoderLM lm(small_config(positions), rng);
  lm.to(dtype);
  lm.eval();
  if (bf16_weights) lm.set_inference_dtype(DType::BF16);
  const int64_t B = 3, P = 6, N = 8, V = 50;
  const std::vector<int64_t> plen = {3, 6, 1};
  std::vector<std::vector<int64_t>> seq(B);
  for (auto& s : seq) s = random_tokens(P + N, V, rng);
  std::vector<int64_t> prompt;  // (B, P), padded with the sequences' own later tokens
  for (int64_t b = 0; b < B; ++b) prompt.insert(prompt.end(), seq[b].begin(), seq[b].begin() + P);
  NoGradGuard ng;
  std::vector<KvCache> cache = lm.make_cache(B, 4);  // grows
  const Tensor first = lm.forward_cached(ids(prompt, {B, P}), cache, ids(plen, {B}));  // (B, P, V)
  std::vector<Tensor> steps;  // (B, 1, V) each
  for (int64_t t = 0; t < N; ++t) {
    std::vector<int64_t> next(B);
    for (int64_t b = 0; b < B; ++b) next[b] = seq[b][plen[b] + t];
    steps.push_back(lm.forward_cached(ids(next, {B, 1}), cache));
  }
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = plen[b] + N;
    const std::vector<int64_t> own(seq[b].begin(), seq[b].begin() + L);
    const Tensor full = lm.forward(ids(own, {1, L})).select(0, 0);  // (L, V)
    EXPECT_LT(max_abs_diff(first.select(0, b).slice(0, 0, plen[b]), full.slice(0, 0, plen[b])), tol);
    for (int64_t t = 0; t < N; ++t)
      EXPECT_LT(max_abs_diff(steps[t].select(0, b).select(0, 0), full.select(0, plen[b] + t)), tol)
          << "sequence " << b << " step " << t;
  }
}

TEST(DecoderLM, CachedLogitsEqualFullRecomputationF32) {
  check_cached_equals_full(DType::F32, "learned", 1e-5);
}
TEST(DecoderLM, CachedLogitsEqualFullRecomputationF64) {
  check_cached_equals_full(DType::F64, "learned", 1e-12);
}
TEST(DecoderLM, CachedLogitsEqualFullRecomputationSinusoidal) {
  check_cached_equals_full(DType::F64, "sinusoidal", 1e-12);
}

// With bf16 inference weights the cached steps and the full recomputations (at most 14 rows: row
// dots on the bf16 weights) and the prefill (18 rows: the widened weights through the GEMM) use
// the same rounded weights, so they agree as closely as in F32.
TEST(DecoderLM, CachedLogitsEqualFullRecomputationBf16Weights) {
  check_cached_equals_full(DType::F32, "learned", 1e-5, true);
}

// The bf16 weights move the logits by bf16 rounding, no more; train() drops them.
TEST(DecoderLM, Bf16WeightsStayCloseToF32) {
  Rng rng(9);
  DecoderLM lm(small_config(), rng);
  lm.eval();
  const Tensor tokens = ids(random_tokens(2 * 7, 50, rng), {2, 7});  // (B, L)
  NoGradGuard ng;
  const Tensor f32 = lm.forward(tokens);  // (B, L, V)
  lm.set_inference_dtype(DType::BF16);
  const Tensor bf16 = lm.forward(tokens);
  const double scale = max_abs_diff(f32, Tensor::zeros(f32.shape()));
  EXPECT_GT(max_abs_diff(bf16, f32), 0.0);  // the rounded weights did run
  EXPECT_LT(max_abs_diff(bf16, f32), 0.02 * scale) << "logit scale " << scale;
  lm.train();
  lm.eval();
  EXPECT_EQ(lm.forward(tokens).to_vector<float>(), f32.to_vector<float>());
}

TEST(DecoderLM, PrefillAtOnceEqualsOneTokenAtATime) {
  Rng rng(3);
  DecoderLM lm(small_config(), rng);
  lm.eval();
  const int64_t B = 2, P = 9;
  const Tensor prompt = ids(random_tokens(B * P, 50, rng), {B, P});
  NoGradGuard ng;
  std::vector<KvCache> a = lm.make_cache(B, 16), b = lm.make_cache(B, 16);
  const Tensor all = lm.forward_cached(prompt, a);  // (B, P, V)
  for (int64_t t = 0; t < P; ++t)
    EXPECT_LT(max_abs_diff(lm.forward_cached(prompt.slice(1, t, t + 1), b), all.slice(1, t, t + 1)),
              1e-5);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LT(max_abs_diff(a[i].keys(), b[i].keys()), 1e-5);
}

TEST(DecoderLM, ForwardIsCausal) {
  Rng rng(4);
  DecoderLM lm(small_config(), rng);
  lm.eval();
  std::vector<int64_t> t = random_tokens(10, 50, rng);
  NoGradGuard ng;
  const Tensor a = lm.forward(ids(t, {1, 10}));  // (1, L, V)
  t[7] = (t[7] + 1) % 50;
  const Tensor b = lm.forward(ids(t, {1, 10}));
  EXPECT_EQ(max_abs_diff(a.slice(1, 0, 7), b.slice(1, 0, 7)), 0.0);
  EXPECT_GT(max_abs_diff(a.slice(1, 7, 8), b.slice(1, 7, 8)), 1e-4);
}

TEST(DecoderLM, GenerateEqualsUncachedGreedyAndSampled) {
  Rng rng(5);
  DecoderLM lm(small_config(), rng);
  lm.eval();
  const int64_t B = 3, P = 5, N = 12;
  const Tensor prompt = ids(random_tokens(B * P, 50, rng), {B, P});
  GenerateOptions opt;
  opt.prompt_lengths = ids({5, 2, 4}, {B});
  const Tensor cached = lm.generate(prompt, N, opt);  // (B, N)
  EXPECT_EQ(cached.shape(), Shape({B, N}));
  EXPECT_EQ(cached.to_vector<int64_t>(), lm.generate_uncached(prompt, N, opt).to_vector<int64_t>());
  // The first token of sequence 1 is the argmax of forward() over its 2 prompt tokens.
  {
    NoGradGuard ng;
    const Tensor l = lm.forward(prompt.slice(0, 1, 2).slice(1, 0, 2)).select(0, 0).select(0, 1);
    const auto v = l.to_vector<float>();
    EXPECT_EQ(cached.to_vector<int64_t>()[1 * N],
              std::max_element(v.begin(), v.end()) - v.begin());
  }
  Rng r1(42), r2(42);
  opt.greedy = false;
  opt.temperature = 2.0;  // flat enough that sampling departs from greedy
  opt.rng = &r1;
  const Tensor s1 = lm.generate(prompt, N, opt);
  opt.rng = &r2;
  EXPECT_EQ(s1.to_vector<int64_t>(), lm.generate_uncached(prompt, N, opt).to_vector<int64_t>());
  EXPECT_NE(s1.to_vector<int64_t>(), cached.to_vector<int64_t>());
}

TEST(DecoderLM, ReorderedCacheDecodesThePermutedSequences) {
  Rng rng(6);
  DecoderLM lm(small_config(), rng);
  lm.eval();
  const std::vector<int64_t> t = random_tokens(2 * 6, 50, rng);  // (2, 6)
  NoGradGuard ng;
  std::vector<KvCache> cache = lm.make_cache(2, 8);
  lm.forward_cached(ids(t, {2, 6}).slice(1, 0, 5), cache);
  for (KvCache& c : cache) c.reorder(ids({1, 0, 1}, {3}));
  const Tensor y = lm.forward_cached(ids({t[11], t[5], t[5]}, {3, 1}), cache);  // (3, 1, V)
  const Tensor full0 = lm.forward(ids(t, {2, 6}));  // (2, 6, V)
  // Rows 0 and 1 continue sequences 1 and 0 with their own 6th tokens; row 2 is sequence 1's
  // prefix followed by sequence 0's 6th token.
  EXPECT_LT(max_abs_diff(y.select(0, 0).select(0, 0), full0.select(0, 1).select(0, 5)), 1e-5);
  EXPECT_LT(max_abs_diff(y.select(0, 1).select(0, 0), full0.select(0, 0).select(0, 5)), 1e-5);
  std::vector<int64_t> mixed(t.begin() + 6, t.begin() + 11);
  mixed.push_back(t[5]);
  const Tensor full1 = lm.forward(ids(mixed, {1, 6}));
  EXPECT_LT(max_abs_diff(y.select(0, 2).select(0, 0), full1.select(0, 0).select(0, 5)), 1e-5);
}

TEST(DecoderLM, ParameterNamesTieTheHeadToTheEmbedding) {
  Rng rng(1);
  DecoderLM lm(small_config(), rng);
  const auto names = lm.state_dict();
  EXPECT_TRUE(names.count("tok_emb.weight") && names.count("pos_emb.weight") &&
              names.count("layers.1.self_attn.q_proj.weight") && names.count("norm.weight"));
  // 50 * 32 (tied embedding) + 40 * 32 positions + 2 layers + final norm.
  const int64_t E = 32, F = 64, kv = 2 * 8;
  const int64_t layer = 2 * 2 * E + (E * E + E) * 2 + (E * kv + kv) * 2 + E * F + F + F * E + E;
  EXPECT_EQ(lm.num_parameters(), 50 * E + 40 * E + 2 * layer + 2 * E);
  Rng rng2(1);
  DecoderLM sin(small_config("sinusoidal"), rng2);
  EXPECT_FALSE(sin.state_dict().count("pos_emb.weight"));
}

TEST(DecoderLM, MisuseThrows) {
  Rng rng(2);
  DecoderLMConfig bad = small_config();
  bad.positions = "rotary";
  expect_error<ValueError>([&] { DecoderLM(bad, rng); }, {"rotary"});
  DecoderLMConfig drop = small_config();
  drop.dropout = 0.1;
  DecoderLM lm(drop, rng);
  const Tensor prompt = ids({1, 2, 3, 4}, {2, 2});
  expect_error<StateError>([&] { lm.generate(prompt, 3); }, {"eval()"});
  lm.eval();
  expect_error<ValueError>([&] { lm.generate(prompt, 39); }, {"2 + 39", "max_len 40"});
  GenerateOptions opt;
  opt.prompt_lengths = ids({2, 3}, {2});
  expect_error<ValueError>([&] { lm.generate(prompt, 3, opt); }, {"prompt_lengths[1] = 3"});
  opt.prompt_lengths = Tensor();
  opt.greedy = false;
  expect_error<ValueError>([&] { lm.generate(prompt, 3, opt); }, {"Rng"});
  expect_error<ShapeError>([&] { lm.generate(ids({1, 2}, {2}), 3); }, {"(2,)", "(B, P)"});
  NoGradGuard ng;
  std::vector<KvCache> cache = lm.make_cache(2, 4);
  expect_error<ShapeError>([&] { lm.forward_cached(ids({1, 2, 3}, {3, 1}), cache); },
                           {"(3, 1)", "B = 2"});
  std::vector<KvCache> one;
  one.push_back(KvCache(2, 2, 8, 4));
  expect_error<ValueError>([&] { lm.forward_cached(prompt, one); }, {"1 caches for 2 layers"});
}
