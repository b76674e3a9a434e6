// KvCache / CrossKvCache and incremental attention: the cache's contents, lengths, growth,
// reorder and step masks against hand-written expectations; MultiHeadAttention::forward_cached
// and TransformerEncoderLayer::forward_cached against the full causal forward over the whole
// sequence (one token at a time, several at once, ragged per-sequence lengths, grouped-query
// heads); cross-attention over cached encoder K/V against forward(query, memory); errors.
//   Letters: B batch, Hkv K/V heads, Dh head dim, T new tokens, L sequence, E model dim, S source.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "focus/autograd/node.hpp"
#include "focus/nn/kv_cache.hpp"
#include "focus/nn/transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;

namespace {

using focus::testing::max_abs_diff;

// (B, Hkv, T, Dh) with element [b, h, t, d] = 1000 b + 100 h + 10 (t + first) + d: each value
// names its place, so a misplaced row shows.
Tensor tagged(int64_t B, int64_t Hkv, int64_t T, int64_t Dh, int64_t first) {
  std::vector<double> v;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < Dh; ++d) v.push_back(1000 * b + 100 * h + 10 * (t + first) + d);
  return Tensor::from_vector(v, {B, Hkv, T, Dh});
}

Tensor ids(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n});
}

}  // namespace

TEST(KvCache, AppendStoresRowsAndGrowsByDoubling) {
  KvCache c(2, 2, 3, /*capacity=*/2, DType::F64);
  const KvStep s1 = c.append(tagged(2, 2, 3, 3, 0), tagged(2, 2, 3, 3, 0));  // grows 2 -> 4
  EXPECT_EQ(c.capacity(), 4);
  EXPECT_EQ(s1.k.shape(), Shape({2, 2, 3, 3}));
  EXPECT_TRUE(s1.mask.causal);  // equal lengths: the plain causal convention is exact
  EXPECT_FALSE(s1.mask.key_lengths.defined() || s1.mask.bias.defined());
  c.append(tagged(2, 2, 2, 3, 3), tagged(2, 2, 2, 3, 3));  // 5 tokens: grows 4 -> 8, keeps rows
  EXPECT_EQ(c.capacity(), 8);
  EXPECT_EQ(c.lengths().to_vector<int64_t>(), std::vector<int64_t>({5, 5}));
  EXPECT_EQ(max_abs_diff(c.keys(), tagged(2, 2, 5, 3, 0)), 0.0);
  EXPECT_EQ(max_abs_diff(c.values(), tagged(2, 2, 5, 3, 0)), 0.0);
  const KvStep s3 = c.append(tagged(2, 2, 1, 3, 5), tagged(2, 2, 1, 3, 5));
  EXPECT_FALSE(s3.mask.causal || s3.mask.key_lengths.defined() || s3.mask.bias.defined());
  c.reset();
  EXPECT_EQ(c.max_length(), 0);
  EXPECT_EQ(c.capacity(), 8);
}

TEST(KvCache, NonContiguousInputIsCopiedByElement) {
  // (B, T, Hkv, Dh) storage seen as (B, Hkv, T, Dh), the layout a projection gives.
  const Tensor src = tagged(2, 2, 3, 4, 0).permute({0, 2, 1, 3}).contiguous().transpose(1, 2);
  // And one whose last dim is strided (the copy goes through a packed temporary).
  const Tensor cols = tagged(2, 2, 3, 4, 0).transpose(2, 3).contiguous().transpose(2, 3);
  KvCache c(2, 2, 4, 8, DType::F64);
  c.append(src, cols);
  EXPECT_EQ(max_abs_diff(c.keys(), tagged(2, 2, 3, 4, 0)), 0.0);
  EXPECT_EQ(max_abs_diff(c.values(), tagged(2, 2, 3, 4, 0)), 0.0);
}

TEST(KvCache, CountsGiveRaggedLengthsAndMasks) {
  KvCache c(2, 1, 2, 16, DType::F64);
  // Prefill 4 tokens, of which sequence 0 keeps 2 and sequence 1 keeps 4.
  c.append(tagged(2, 1, 4, 2, 0), tagged(2, 1, 4, 2, 0), ids({2, 4}));
  EXPECT_EQ(c.lengths().to_vector<int64_t>(), std::vector<int64_t>({2, 4}));
  EXPECT_EQ(c.max_length(), 4);
  // One token each: written at 2 and 4; the view spans max + 1 = 5 keys; key_lengths = old + 1.
  const KvStep one = c.append(tagged(2, 1, 1, 2, 7), tagged(2, 1, 1, 2, 7));
  EXPECT_EQ(one.k.size(2), 5);
  EXPECT_FALSE(one.mask.causal);
  EXPECT_EQ(one.mask.key_lengths.to_vector<int64_t>(), std::vector<int64_t>({3, 5}));
  EXPECT_EQ(one.k.select(0, 0).select(1, 2).to_vector<double>(), std::vector<double>({70, 71}));
  EXPECT_EQ(one.k.select(0, 1).select(1, 4).to_vector<double>(), std::vector<double>({1070, 1071}));
  // Two tokens each at lengths (3, 5): a bias allowing key j to query i iff j <= old[b] + i.
  const KvStep two = c.append(tagged(2, 1, 2, 2, 0), tagged(2, 1, 2, 2, 0));
  ASSERT_TRUE(two.mask.bias.defined());
  EXPECT_EQ(two.mask.bias.shape(), Shape({2, 1, 2, 7}));
  const auto bias = two.mask.bias.to_vector<double>();
  const int64_t old[2] = {3, 5};
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 7; ++j)
        EXPECT_EQ(bias[(b * 2 + i) * 7 + j],
                  j <= old[b] + i ? 0.0 : -std::numeric_limits<double>::infinity())
            << b << " " << i << " " << j;
  EXPECT_EQ(c.lengths().to_vector<int64_t>(), std::vector<int64_t>({5, 7}));
}

TEST(KvCache, ReorderPicksSequencesWithRepeats) {
  KvCache c(2, 2, 3, 4, DType::F64);
  c.append(tagged(2, 2, 3, 3, 0), tagged(2, 2, 3, 3, 0), ids({3, 1}));
  c.reorder(ids({1, 0, 1}));  // batch 2 -> 3
  EXPECT_EQ(c.batch(), 3);
  EXPECT_EQ(c.lengths().to_vector<int64_t>(), std::vector<int64_t>({1, 3, 1}));
  const Tensor all = tagged(2, 2, 3, 3, 0);
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t from = i == 1 ? 0 : 1;
    EXPECT_EQ(max_abs_diff(c.keys().select(0, i), all.select(0, from)), 0.0) << i;
    EXPECT_EQ(max_abs_diff(c.values().select(0, i), all.select(0, from)), 0.0) << i;
  }
  c.reorder(ids({2, 1, 0}));  // same batch: the spare buffer is reused
  EXPECT_EQ(c.lengths().to_vector<int64_t>(), std::vector<int64_t>({1, 3, 1}));
  EXPECT_EQ(max_abs_diff(c.keys().select(0, 1), all.select(0, 0)), 0.0);
  // Appending after a reorder continues each sequence at its own length.
  c.append(tagged(3, 2, 1, 3, 9), tagged(3, 2, 1, 3, 9));
  EXPECT_EQ(c.lengths().to_vector<int64_t>(), std::vector<int64_t>({2, 4, 2}));
}

TEST(KvCache, MisuseThrowsTypedErrors) {
  expect_error<ValueError>([] { KvCache(0, 1, 2); }, {"batch 0"});
  expect_error<DTypeError>([] { KvCache(1, 1, 2, 4, DType::I64); }, {"I64"});
  KvCache c(2, 2, 3, 4, DType::F32);
  const Tensor k = Tensor::zeros({2, 2, 1, 3});
  expect_error<ShapeError>([&] { c.append(Tensor::zeros({3, 2, 1, 3}), k); },
                           {"(3, 2, 1, 3)", "(2, 2, T, 3)"});
  expect_error<ShapeError>([&] { c.append(k, Tensor::zeros({2, 2, 2, 3})); }, {"(2, 2, 2, 3)"});
  expect_error<DTypeError>([&] { c.append(k.to(DType::F64), k.to(DType::F64)); }, {"F64", "F32"});
  expect_error<ValueError>([&] { c.append(k, k, ids({0, 2})); }, {"counts[1] = 2", "[0, 1]"});
  expect_error<ShapeError>([&] { c.append(k, k, ids({1})); }, {"counts"});
  Tensor g = Tensor::zeros({2, 2, 1, 3});
  g.requires_grad_();
  expect_error<StateError>([&] { c.append(g, k); }, {"NoGradGuard"});
  expect_error<ValueError>([&] { c.reorder(ids({0, 2})); }, {"index[1] = 2", "[0, 1]"});
  expect_error<DTypeError>([&] { c.reorder(Tensor::zeros({2})); }, {"F32"});
  EXPECT_EQ(c.max_length(), 0);  // nothing was appended by the failed calls

  CrossKvCache x;
  expect_error<StateError>([&] { x.keys(); }, {"empty"});
  AttentionMask causal;
  causal.causal = true;
  expect_error<ValueError>([&] { x.set(k, k, causal); }, {"key_lengths"});
  AttentionMask lengths;
  lengths.key_lengths = ids({1, 2});
  expect_error<ValueError>([&] { x.set(k, k, lengths); }, {"key_lengths[1] = 2"});
  expect_error<ShapeError>([&] { x.set(k, Tensor::zeros({2, 2, 3, 3})); }, {"(2, 2, 3, 3)"});
}

// ---- incremental attention against the full forward --------------------------------------------

namespace {

// An F64 layer in eval mode.
std::unique_ptr<MultiHeadAttention> make_mha(int64_t E, int64_t H, int64_t Hkv, uint64_t seed) {
  Rng rng(seed);
  auto m =
      std::make_unique<MultiHeadAttention>(MultiHeadAttentionOptions{E, H, Hkv, true, 0.0}, rng);
  m->to(DType::F64);
  m->eval();
  return m;
}

}  // namespace

TEST(IncrementalAttention, TokenByTokenAndChunksEqualCausalForward) {
  for (const int64_t Hkv : {4, 2}) {  // plain and grouped-query heads
    Rng rng(11);
    auto m = make_mha(16, 4, Hkv, 3);
    const int64_t B = 3, L = 7;
    const Tensor x = Tensor::randn({B, L, 16}, rng, DType::F64);  // (B, L, E)
    AttentionMask causal;
    causal.causal = true;
    NoGradGuard ng;
    const Tensor full = m->forward(x, Tensor(), causal);  // (B, L, E)
    for (const std::vector<int64_t>& chunks :
         {std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1}, {3, 1, 2, 1}, {7}}) {
      KvCache c = m->make_cache(B, /*capacity=*/2);  // grows on the way
      int64_t at = 0;
      for (const int64_t T : chunks) {
        const Tensor y = m->forward_cached(x.slice(1, at, at + T), c);  // (B, T, E)
        EXPECT_LT(max_abs_diff(y, full.slice(1, at, at + T)), 1e-12) << "Hkv " << Hkv << " at " << at;
        at += T;
      }
      EXPECT_EQ(c.max_length(), L);
    }
  }
}

TEST(IncrementalAttention, RaggedSequencesEqualTheirOwnForward) {
  // Sequences of 2, 5 and 4 prompt tokens prefilled in one padded call, then 3 tokens one by
  // one and a chunk of 2: each must equal the causal forward over that sequence alone.
  Rng rng(5);
  auto m = make_mha(12, 3, 3, 8);
  const int64_t B = 3, P = 5, E = 12;
  const std::vector<int64_t> plen = {2, 5, 4};
  const Tensor prompt = Tensor::randn({B, P, E}, rng, DType::F64);  // (B, P, E), padded
  const Tensor more = Tensor::randn({B, 5, E}, rng, DType::F64);    // (B, 5, E) next tokens
  NoGradGuard ng;
  KvCache c = m->make_cache(B, 4);
  const Tensor y0 = m->forward_cached(prompt, c, ids(plen));  // (B, P, E)
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < 3; ++t) ys.push_back(m->forward_cached(more.slice(1, t, t + 1), c));
  ys.push_back(m->forward_cached(more.slice(1, 3, 5), c));  // ragged lengths, T = 2: a bias mask
  AttentionMask causal;
  causal.causal = true;
  for (int64_t b = 0; b < B; ++b) {
    // Sequence b alone: its prompt, then the 5 further tokens.
    const Tensor seq = Tensor::empty({1, plen[b] + 5, E}, DType::F64);
    seq.slice(1, 0, plen[b]).copy_(prompt.slice(0, b, b + 1).slice(1, 0, plen[b]));
    seq.slice(1, plen[b], plen[b] + 5).copy_(more.slice(0, b, b + 1));
    const Tensor full = m->forward(seq, Tensor(), causal).select(0, 0);  // (L, E)
    EXPECT_LT(max_abs_diff(y0.select(0, b).slice(0, 0, plen[b]), full.slice(0, 0, plen[b])), 1e-12);
    for (int64_t t = 0; t < 3; ++t)
      EXPECT_LT(max_abs_diff(ys[t].select(0, b), full.slice(0, plen[b] + t, plen[b] + t + 1)), 1e-12)
          << b << " " << t;
    EXPECT_LT(max_abs_diff(ys[3].select(0, b), full.slice(0, plen[b] + 3, plen[b] + 5)), 1e-12);
    EXPECT_EQ(c.length(b), plen[b] + 5);
  }
}

TEST(IncrementalAttention, ReorderedCacheContinuesThePermutedSequences) {
  Rng rng(2);
  auto m = make_mha(8, 2, 1, 4);
  const Tensor x = Tensor::randn({2, 4, 8}, rng, DType::F64);  // (B, L, E)
  AttentionMask causal;
  causal.causal = true;
  NoGradGuard ng;
  KvCache c = m->make_cache(2, 8);
  m->forward_cached(x.slice(1, 0, 3), c);
  c.reorder(ids({1, 1, 0}));  // beams: sequence 1 twice, then sequence 0
  const Tensor next = Tensor::randn({3, 1, 8}, rng, DType::F64);  // (3, 1, E)
  const Tensor y = m->forward_cached(next, c);
  const int64_t from[3] = {1, 1, 0};
  for (int64_t i = 0; i < 3; ++i) {
    Tensor seq = Tensor::empty({1, 4, 8}, DType::F64);
    seq.slice(1, 0, 3).copy_(x.slice(0, from[i], from[i] + 1).slice(1, 0, 3));
    seq.slice(1, 3, 4).copy_(next.slice(0, i, i + 1));
    const Tensor full = m->forward(seq, Tensor(), causal);
    EXPECT_LT(max_abs_diff(y.select(0, i), full.select(0, 0).slice(0, 3, 4)), 1e-12) << i;
  }
}

TEST(IncrementalAttention, CrossAttentionOverCachedMemoryEqualsForward) {
  Rng rng(9);
  auto m = make_mha(16, 4, 2, 6);
  const int64_t B = 2, S = 6;
  const Tensor memory = Tensor::randn({B, S, 16}, rng, DType::F64);  // (B, S, E)
  const Tensor q = Tensor::randn({B, 3, 16}, rng, DType::F64);       // (B, T, E)
  AttentionMask src;
  src.key_lengths = ids({4, 6});
  NoGradGuard ng;
  CrossKvCache c;
  m->cache_memory(memory, c, src);
  EXPECT_EQ(c.keys().shape(), Shape({B, 2, S, 4}));
  const Tensor full = m->forward(q, memory, src);
  EXPECT_LT(max_abs_diff(m->forward_cross_cached(q, c), full), 1e-12);
  for (int64_t t = 0; t < 3; ++t)  // step by step: the same K/V serve every step
    EXPECT_LT(max_abs_diff(m->forward_cross_cached(q.slice(1, t, t + 1), c), full.slice(1, t, t + 1)),
              1e-12);
  // Reordered (beams 1, 0, 0): rows of the forward over reordered memory and lengths.
  c.reorder(ids({1, 0, 0}));
  EXPECT_EQ(c.mask().key_lengths.to_vector<int64_t>(), std::vector<int64_t>({6, 4, 4}));
  const Tensor q3 = Tensor::randn({3, 1, 16}, rng, DType::F64);
  const Tensor mem3 = Tensor::empty({3, S, 16}, DType::F64);
  const int64_t from[3] = {1, 0, 0};
  for (int64_t i = 0; i < 3; ++i) mem3.select(0, i).copy_(memory.select(0, from[i]));
  AttentionMask src3;
  src3.key_lengths = ids({6, 4, 4});
  EXPECT_LT(max_abs_diff(m->forward_cross_cached(q3, c), m->forward(q3, mem3, src3)), 1e-12);
  expect_error<ShapeError>([&] { m->forward_cross_cached(q, c); }, {"(2, 3, 16)", "(3, T, 16)"});
}

TEST(IncrementalAttention, EncoderLayerCachedEqualsCausalForward) {
  Rng rng(1);
  TransformerEncoderLayer layer({16, 4, 0, 32, 0.1, 0.0, true, 1e-5}, rng);
  layer.to(DType::F64);
  const Tensor x = Tensor::randn({2, 5, 16}, rng, DType::F64);  // (B, L, E)
  NoGradGuard ng;
  KvCache c = layer.make_cache(2, 8);
  expect_error<StateError>([&] { layer.forward_cached(x, c); }, {"eval()", "0.1"});
  layer.eval();
  AttentionMask causal;
  causal.causal = true;
  const Tensor full = layer.forward(x, causal);
  EXPECT_LT(max_abs_diff(layer.forward_cached(x.slice(1, 0, 2), c), full.slice(1, 0, 2)), 1e-12);
  for (int64_t t = 2; t < 5; ++t)
    EXPECT_LT(max_abs_diff(layer.forward_cached(x.slice(1, t, t + 1), c), full.slice(1, t, t + 1)),
              1e-12);
}

TEST(IncrementalAttention, MisuseThrows) {
  auto m = make_mha(8, 2, 2, 1);
  KvCache c = m->make_cache(2, 4);
  NoGradGuard ng;
  expect_error<ShapeError>([&] { m->forward_cached(Tensor::zeros({3, 1, 8}, DType::F64), c); },
                           {"(3, 1, 8)", "(2, T, 8)"});
  KvCache wrong(2, 1, 4, 4, DType::F64);
  expect_error<ShapeError>([&] { m->forward_cached(Tensor::zeros({2, 1, 8}, DType::F64), wrong); },
                           {"1 heads x 4", "2 x 4"});
  KvCache f32(2, 2, 4, 4, DType::F32);
  expect_error<DTypeError>([&] { m->forward_cached(Tensor::zeros({2, 1, 8}, DType::F64), f32); },
                           {"F64", "F32"});
}
