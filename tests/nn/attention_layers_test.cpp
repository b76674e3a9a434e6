// MultiHeadAttention, AttentionPooling and TransformerEncoderLayer: values against naive
// projections + naive attention, per-mask-kind finite-difference gradients (inputs and every
// parameter, F64), masking semantics (what a masked token may not influence), dropout behaviour,
// parameter names and shapes.
//   Letters: B batch, Lq queries, Lk keys, E model dim, H heads, Hkv K/V heads, Dh head dim.
#include <gtest/gtest.h>

#include "focus/nn/attention.hpp"
#include "focus/nn/transformer.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/unary.hpp"
#include "focus/ops/view.hpp"
#include "nn/module_gradcheck.hpp"
#include "nn/naive_attention.hpp"

using namespace focus;
using focus::testing::max_abs_diff;
using focus::testing::max_rel_diff;
using focus::testing::module_gradcheck;
using focus::testing::naive_attention;
using focus::testing::rand_input;

using Inputs = std::vector<Tensor>;

namespace {

// rows (R, IN) @ W^T + b, naive.
std::vector<double> naive_linear(const std::vector<double>& x, const Linear& l) {
  const int64_t IN = l.in_features(), OUT = l.out_features(), R = x.size() / IN;
  const auto w = l.weight.to_vector<double>();
  const auto b = l.bias.defined() ? l.bias.to_vector<double>() : std::vector<double>(OUT, 0.0);
  std::vector<double> y(R * OUT);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t o = 0; o < OUT; ++o) {
      double s = b[o];
      for (int64_t i = 0; i < IN; ++i) s += x[r * IN + i] * w[o * IN + i];
      y[r * OUT + o] = s;
    }
  return y;
}

// (B, L, heads * Dh) values -> an F64 (B, heads, L, Dh) tensor.
Tensor heads_of(const std::vector<double>& x, int64_t B, int64_t L, int64_t heads, int64_t Dh) {
  std::vector<double> h(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t hh = 0; hh < heads; ++hh)
        for (int64_t d = 0; d < Dh; ++d)
          h[((b * heads + hh) * L + l) * Dh + d] = x[((b * L + l) * heads + hh) * Dh + d];
  return Tensor::from_vector(h, {B, heads, L, Dh});
}

// MultiHeadAttention from its definition: naive projections, naive attention, naive merge.
std::vector<double> naive_mha(const MultiHeadAttention& m, const Tensor& query, const Tensor& kv,
                              const AttentionMask& mask, std::vector<double>* weights) {
  const auto& o = m.options();
  const int64_t B = query.size(0), Lq = query.size(1), Lk = kv.size(1), E = o.d_model;
  const int64_t H = o.n_heads, Hkv = o.n_kv_heads, Dh = E / H;
  const auto xq = query.to_vector<double>(), xkv = kv.to_vector<double>();
  const Tensor q = heads_of(naive_linear(xq, *m.q_proj), B, Lq, H, Dh);
  const Tensor k = heads_of(naive_linear(xkv, *m.k_proj), B, Lk, Hkv, Dh);
  const Tensor v = heads_of(naive_linear(xkv, *m.v_proj), B, Lk, Hkv, Dh);
  AttentionOptions ao;
  static_cast<AttentionMask&>(ao) = mask;
  const auto r = naive_attention(q, k, v, ao);  // out (B, H, Lq, Dh)
  if (weights) *weights = r.weights;
  std::vector<double> merged(B * Lq * E);  // (B, Lq, E)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i)
        for (int64_t d = 0; d < Dh; ++d)
          merged[(b * Lq + i) * E + h * Dh + d] = r.out[((b * H + h) * Lq + i) * Dh + d];
  return naive_linear(merged, *m.out_proj);
}

struct MhaCase {
  const char* name;
  int64_t E, H, Hkv, B, Lq, Lk;  // Lk < 0: self-attention (Lk = Lq)
  AttentionMask mask;
};

std::vector<MhaCase> mha_cases(Rng& rng) {
  std::vector<MhaCase> cs;
  cs.push_back({"none", 4, 2, 0, 2, 3, -1, {}});
  MhaCase c{"causal", 4, 2, 0, 2, 3, -1, {}};
  c.mask.causal = true;
  cs.push_back(c);
  c = {"key_lengths", 4, 2, 0, 2, 3, -1, {}};
  c.mask.key_lengths = Tensor::from_vector(std::vector<int64_t>{3, 1}, {2});
  cs.push_back(c);
  c = {"key_padding_mask", 4, 2, 0, 2, 3, -1, {}};
  c.mask.key_padding_mask = Tensor::from_vector(std::vector<int64_t>{0, 0, 1, 1, 0, 0}, {2, 3});
  cs.push_back(c);
  c = {"bias", 4, 2, 0, 2, 3, -1, {}};
  c.mask.bias = Tensor::randn({1, 2, 3, 3}, rng, DType::F64);  // per head, shared over B
  cs.push_back(c);
  c = {"gqa_2_kv_heads", 8, 4, 2, 2, 3, -1, {}};
  c.mask.causal = true;
  cs.push_back(c);
  c = {"cross", 4, 2, 0, 2, 2, 4, {}};
  c.mask.key_lengths = Tensor::from_vector(std::vector<int64_t>{4, 2}, {2});
  cs.push_back(c);
  return cs;
}

}  // namespace

TEST(MultiHeadAttention, NamesAndShapes) {
  Rng rng(1);
  MultiHeadAttention m({.d_model = 8, .n_heads = 4, .n_kv_heads = 2}, rng);
  const NamedTensors p = m.named_parameters();
  ASSERT_EQ(p.size(), 8u);
  const char* expected[] = {"q_proj.weight", "q_proj.bias", "k_proj.weight",   "k_proj.bias",
                            "v_proj.weight", "v_proj.bias", "out_proj.weight", "out_proj.bias"};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(p[i].first, expected[i]);
  EXPECT_EQ(m.k_proj->weight.shape(), Shape({4, 8}));  // Hkv * Dh = 2 * 2
  EXPECT_EQ(m.q_proj->weight.shape(), Shape({8, 8}));
  EXPECT_EQ(m.options().n_kv_heads, 2);
  for (const auto& [n, t] : p) {  // biases start at zero (torch)
    if (n.find("bias") == std::string::npos) continue;
    for (double v : t.to_vector<double>()) EXPECT_EQ(v, 0.0);
  }
  Tensor w;
  const Tensor y = m.forward(Tensor::zeros({3, 5, 8}), Tensor::zeros({3, 7, 8}), {}, &w);
  EXPECT_EQ(y.shape(), Shape({3, 5, 8}));
  EXPECT_EQ(w.shape(), Shape({3, 4, 5, 7}));
  EXPECT_THROW(MultiHeadAttention({.d_model = 6, .n_heads = 4}, rng), ValueError);
  EXPECT_THROW(MultiHeadAttention({.d_model = 8, .n_heads = 4, .n_kv_heads = 3}, rng), ValueError);
  EXPECT_THROW(m.forward(Tensor::zeros({3, 5, 6})), ShapeError);
  EXPECT_THROW(m.forward(Tensor::zeros({3, 5, 8}), Tensor::zeros({2, 5, 8})), ShapeError);
}

TEST(MultiHeadAttention, MatchesNaiveForEveryMaskKind) {
  Rng rng(2);
  for (const MhaCase& c : mha_cases(rng)) {
    SCOPED_TRACE(c.name);
    MultiHeadAttention m({.d_model = c.E, .n_heads = c.H, .n_kv_heads = c.Hkv}, rng);
    // Non-zero biases so the naive projections check them too.
    for (auto& [n, t] : m.named_parameters())
      if (n.find("bias") != std::string::npos) {
        Tensor b = t;
        b.copy_(Tensor::randn(t.shape(), rng));
      }
    m.to(DType::F64);
    const Tensor x = Tensor::randn({c.B, c.Lq, c.E}, rng, DType::F64);  // (B, Lq, E)
    const Tensor kv = c.Lk < 0 ? Tensor() : Tensor::randn({c.B, c.Lk, c.E}, rng, DType::F64);
    Tensor w;
    const Tensor y = m.forward(x, kv, c.mask, &w);
    std::vector<double> ref_w;
    const auto ref = naive_mha(m, x, kv.defined() ? kv : x, c.mask, &ref_w);
    EXPECT_LT(max_abs_diff(y.to_vector<double>(), ref), 1e-12);
    EXPECT_LT(max_abs_diff(w.to_vector<double>(), ref_w), 1e-12);
  }
}

TEST(MultiHeadAttention, GradientsForEveryMaskKind) {
  Rng rng(3);
  for (const MhaCase& c : mha_cases(rng)) {
    SCOPED_TRACE(c.name);
    MultiHeadAttention m({.d_model = c.E, .n_heads = c.H, .n_kv_heads = c.Hkv}, rng);
    const bool cross = c.Lk > 0;
    const Tensor x = rand_input({c.B, c.Lq, c.E}, rng);
    const Inputs in = cross ? Inputs{x, rand_input({c.B, c.Lk, c.E}, rng)} : Inputs{x};
    EXPECT_TRUE(module_gradcheck(
        m, [&](const Inputs& x) { return m.forward(x[0], cross ? x[1] : Tensor(), c.mask); }, in));
  }
}

TEST(MultiHeadAttention, MaskedKeysDoNotInfluenceTheOutput) {
  Rng rng(4);
  MultiHeadAttention m({.d_model = 4, .n_heads = 2}, rng);
  AttentionMask mask;
  mask.causal = true;
  mask.key_lengths = Tensor::from_vector(std::vector<int64_t>{3, 4}, {2});
  Tensor x = Tensor::randn({2, 4, 4}, rng);  // (B, L, E)
  const Tensor y0 = m.forward(x, Tensor(), mask).clone();
  // Changing token 3 of batch 0 (beyond its length) changes only that query's row (it is its
  // own query); changing token 2 of batch 1 leaves the causal past (queries 0, 1) unchanged.
  x.select(0, 0).select(0, 3).fill_(5.0);
  x.select(0, 1).select(0, 2).fill_(-5.0);
  const Tensor y1 = m.forward(x, Tensor(), mask);
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_LT(max_rel_diff(y1.select(0, 0).select(0, i), y0.select(0, 0).select(0, i)), 1e-6) << i;
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_LT(max_rel_diff(y1.select(0, 1).select(0, i), y0.select(0, 1).select(0, i)), 1e-6) << i;
  EXPECT_GT(max_rel_diff(y1.select(0, 1).select(0, 2), y0.select(0, 1).select(0, 2)), 1e-3);
}

TEST(MultiHeadAttention, DropoutOnlyInTraining) {
  Rng rng(5);
  MultiHeadAttention m({.d_model = 8, .n_heads = 2, .dropout = 0.5}, rng);
  const Tensor x = Tensor::randn({2, 6, 8}, rng);
  EXPECT_GT(max_rel_diff(m.forward(x), m.forward(x)), 1e-4);  // fresh masks each call
  m.eval();
  EXPECT_EQ(max_rel_diff(m.forward(x), m.forward(x)), 0.0);
}

TEST(AttentionPooling, PoolsWithALearnedQuery) {
  Rng rng(6);
  AttentionPooling pool({.d_model = 4, .n_heads = 2}, rng);
  const NamedTensors p = pool.named_parameters();
  EXPECT_EQ(p[0].first, "query");
  EXPECT_EQ(p[1].first, "attn.q_proj.weight");
  EXPECT_EQ(pool.query.shape(), Shape({1, 1, 4}));
  pool.to(DType::F64);
  const Tensor x = Tensor::randn({3, 5, 4}, rng, DType::F64);  // (B, L, E)
  AttentionMask mask;
  mask.key_padding_mask = Tensor::from_vector(
      std::vector<int64_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0}, {3, 5});
  Tensor w;
  const Tensor y = pool.forward(x, mask, &w);  // (B, E)
  ASSERT_EQ(y.shape(), Shape({3, 4}));
  ASSERT_EQ(w.shape(), Shape({3, 2, 1, 5}));
  for (double s : sum(w, {-1}).to_vector<double>()) EXPECT_NEAR(s, 1.0, 1e-12);
  // Same as the attention layer run on the broadcast query.
  const Tensor ref = pool.attn->forward(expand(pool.query, {3, 1, 4}), x, mask);
  EXPECT_LT(max_rel_diff(y, reshape(ref, {3, 4})), 1e-12);
  EXPECT_TRUE(module_gradcheck(pool, [&](const Inputs& in) { return pool.forward(in[0], mask); },
                               {rand_input({3, 5, 4}, rng)}));
  EXPECT_THROW(pool.forward(Tensor::zeros({3, 5, 3}, DType::F64)), ShapeError);
}

TEST(TransformerEncoderLayer, IsPreNormResidualAndDifferentiable) {
  Rng rng(7);
  TransformerEncoderLayer layer({.d_model = 4, .n_heads = 2, .d_ff = 6}, rng);
  const std::vector<std::string> expected = {"norm1.weight",
                                             "norm1.bias",
                                             "self_attn.q_proj.weight",
                                             "self_attn.q_proj.bias",
                                             "self_attn.k_proj.weight",
                                             "self_attn.k_proj.bias",
                                             "self_attn.v_proj.weight",
                                             "self_attn.v_proj.bias",
                                             "self_attn.out_proj.weight",
                                             "self_attn.out_proj.bias",
                                             "norm2.weight",
                                             "norm2.bias",
                                             "linear1.weight",
                                             "linear1.bias",
                                             "linear2.weight",
                                             "linear2.bias"};
  const NamedTensors p = layer.named_parameters();
  ASSERT_EQ(p.size(), expected.size());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(p[i].first, expected[i]);
  layer.to(DType::F64);
  // Non-trivial norm parameters, so the composition check sees them.
  for (const auto& ln : {layer.norm1, layer.norm2}) {
    Tensor w = ln->weight, b = ln->bias;
    w.copy_(Tensor::rand({4}, rng, DType::F64, 0.5, 1.5));
    b.copy_(Tensor::randn({4}, rng, DType::F64, 0.1));
  }
  const Tensor x = Tensor::randn({2, 3, 4}, rng, DType::F64);  // (B, L, E)
  AttentionMask mask;
  mask.causal = true;
  Tensor w;
  const Tensor y = layer.forward(x, mask, &w);
  const Tensor h = x + layer.self_attn->forward(layer.norm1->forward(x), Tensor(), mask);
  const Tensor ref =
      h + layer.linear2->forward(gelu(layer.linear1->forward(layer.norm2->forward(h))));
  EXPECT_LT(max_rel_diff(y, ref), 1e-12);
  EXPECT_EQ(w.shape(), Shape({2, 2, 3, 3}));
  EXPECT_TRUE(module_gradcheck(layer, [&](const Inputs& in) { return layer.forward(in[0], mask); },
                               {rand_input({2, 3, 4}, rng)}));
  // GQA layer too.
  TransformerEncoderLayer gqa({.d_model = 8, .n_heads = 4, .n_kv_heads = 2, .d_ff = 4}, rng);
  EXPECT_TRUE(module_gradcheck(gqa, [&](const Inputs& in) { return gqa.forward(in[0]); },
                               {rand_input({1, 3, 8}, rng)}));
}

TEST(TransformerEncoderLayer, DropoutOnlyInTraining) {
  Rng rng(8);
  TransformerEncoderLayer layer({.d_model = 8, .n_heads = 2, .d_ff = 16, .dropout = 0.3}, rng);
  const Tensor x = Tensor::randn({2, 5, 8}, rng);
  EXPECT_GT(max_rel_diff(layer.forward(x), layer.forward(x)), 1e-4);
  layer.eval();
  EXPECT_EQ(max_rel_diff(layer.forward(x), layer.forward(x)), 0.0);
}
