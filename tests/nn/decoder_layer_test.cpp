// TransformerDecoderLayer (nn/transformer.hpp): parameter names; forward against the pre-norm
// composition written out from the layer's own submodules; F64 finite-difference gradients of
// the target, the memory and every parameter (causal self mask, padded memory); cached decoding
// (forward_cached over a KvCache and a CrossKvCache, token by token and in a 3-token chunk)
// against forward() with a causal self mask, the memory padded; dropout only in training; errors.
// The comparison with PyTorch is the golden test (tests/golden/layers_test.cpp).
//   Letters: B batch, T target length, S memory (source) length, E model dim.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "focus/autograd/node.hpp"
#include "focus/nn/transformer.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/unary.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"
#include "nn/module_gradcheck.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::max_rel_diff;
using focus::testing::module_gradcheck;
using focus::testing::rand_input;
using Inputs = std::vector<Tensor>;

namespace {

Tensor ids(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n});
}

using focus::testing::max_abs_diff;

// Non-trivial norm affines and attention biases (the layer starts with 1 / 0), so that a norm
// or a bias used in the wrong place shows.
void randomize(TransformerDecoderLayer& layer, Rng& rng) {
  const int64_t E = layer.norm1->weight.size(0);
  for (const auto& ln : {layer.norm1, layer.norm2, layer.norm3}) {
    Tensor w = ln->weight, b = ln->bias;
    w.copy_(Tensor::rand({E}, rng, DType::F64, 0.5, 1.5));
    b.copy_(Tensor::randn({E}, rng, DType::F64, 0.1));
  }
  for (const auto& a : {layer.self_attn, layer.cross_attn})
    for (const auto& lin : {a->q_proj, a->k_proj, a->v_proj, a->out_proj}) {
      Tensor b = lin->bias;  // (E), or (E Hkv / H) for grouped-query k/v
      b.copy_(Tensor::randn(b.shape(), rng, DType::F64, 0.1));
    }
}

}  // namespace

TEST(TransformerDecoderLayer, NamesAndPreNormComposition) {
  Rng rng(7);
  TransformerDecoderLayer layer({.d_model = 8, .n_heads = 2, .d_ff = 12}, rng);
  std::vector<std::string> expected;
  for (const char* ln : {"norm1", "self_attn", "norm2", "cross_attn", "norm3", "linear1",
                         "linear2"}) {
    const std::string p(ln);
    if (p.rfind("norm", 0) == 0 || p.rfind("linear", 0) == 0) {
      expected.insert(expected.end(), {p + ".weight", p + ".bias"});
      continue;
    }
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"})
      expected.insert(expected.end(), {p + "." + proj + ".weight", p + "." + proj + ".bias"});
  }
  const NamedTensors p = layer.named_parameters();
  ASSERT_EQ(p.size(), expected.size());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(p[i].first, expected[i]);
  EXPECT_EQ(layer.linear1->weight.shape(), Shape({12, 8}));

  layer.to(DType::F64);
  randomize(layer, rng);
  const Tensor x = Tensor::randn({2, 4, 8}, rng, DType::F64);       // (B, T, E)
  const Tensor memory = Tensor::randn({2, 5, 8}, rng, DType::F64);  // (B, S, E)
  AttentionMask causal, source;
  causal.causal = true;
  source.key_lengths = ids({5, 3});
  Tensor cross_w, self_w;
  const Tensor y = layer.forward(x, memory, causal, source, &cross_w, &self_w);  // (B, T, E)
  const Tensor h1 = x + layer.self_attn->forward(layer.norm1->forward(x), Tensor(), causal);
  const Tensor h2 = h1 + layer.cross_attn->forward(layer.norm2->forward(h1), memory, source);
  const Tensor ref =
      h2 + layer.linear2->forward(gelu(layer.linear1->forward(layer.norm3->forward(h2))));
  EXPECT_LT(max_rel_diff(y, ref), 1e-12);
  EXPECT_EQ(cross_w.shape(), Shape({2, 2, 4, 5}));
  EXPECT_EQ(self_w.shape(), Shape({2, 2, 4, 4}));
  // Sequence 1's memory has 3 real positions: no attention to positions 3, 4.
  EXPECT_EQ(max_abs_diff(cross_w.select(0, 1).slice(2, 3, 5), Tensor::zeros({2, 4, 2}, DType::F64)),
            0.0);
}

TEST(TransformerDecoderLayer, GradientsOfTargetMemoryAndParameters) {
  Rng rng(3);
  for (const int64_t Hkv : {0, 1}) {  // plain and grouped-query heads
    TransformerDecoderLayer layer({.d_model = 4, .n_heads = 2, .n_kv_heads = Hkv, .d_ff = 6}, rng);
    layer.to(DType::F64);
    randomize(layer, rng);
    AttentionMask causal, source;
    causal.causal = true;
    source.key_lengths = ids({4, 2});  // sequence 1's memory positions 2, 3 are padding
    EXPECT_TRUE(module_gradcheck(
        layer, [&](const Inputs& in) { return layer.forward(in[0], in[1], causal, source); },
        {rand_input({2, 3, 4}, rng), rand_input({2, 4, 4}, rng)}))
        << "n_kv_heads " << Hkv;
  }
}

TEST(TransformerDecoderLayer, CachedDecodingEqualsCausalForward) {
  Rng rng(11);
  TransformerDecoderLayer layer({.d_model = 16, .n_heads = 4, .n_kv_heads = 2, .d_ff = 24,
                                 .dropout = 0.1},
                                rng);
  layer.to(DType::F64);
  randomize(layer, rng);
  const int64_t B = 3, T = 6, S = 5;
  const Tensor x = Tensor::randn({B, T, 16}, rng, DType::F64);       // (B, T, E)
  const Tensor memory = Tensor::randn({B, S, 16}, rng, DType::F64);  // (B, S, E)
  AttentionMask causal, source;
  causal.causal = true;
  source.key_lengths = ids({5, 2, 4});
  NoGradGuard ng;
  {
    KvCache self = layer.make_cache(B, 4);
    CrossKvCache cross;
    layer.cache_memory(memory, cross, source);
    expect_error<StateError>([&] { layer.forward_cached(x, self, cross); }, {"eval()", "0.1"});
  }
  layer.eval();
  const Tensor full = layer.forward(x, memory, causal, source);  // (B, T, E)
  for (const std::vector<int64_t>& chunks :
       {std::vector<int64_t>{1, 1, 1, 1, 1, 1}, {3, 1, 2}, {1, 3, 2}}) {
    KvCache self = layer.make_cache(B, 2);  // grows on the way
    CrossKvCache cross;
    layer.cache_memory(memory, cross, source);
    int64_t at = 0;
    for (const int64_t n : chunks) {
      const Tensor y = layer.forward_cached(x.slice(1, at, at + n), self, cross);  // (B, n, E)
      EXPECT_LT(max_abs_diff(y, full.slice(1, at, at + n)), 1e-12) << "at " << at << " chunk " << n;
      at += n;
    }
    EXPECT_EQ(self.max_length(), T);
  }
  // The cross cache without the source padding attends to the padded positions: a different
  // result (the padding matters in this test).
  KvCache self = layer.make_cache(B, 8);
  CrossKvCache unpadded;
  layer.cache_memory(memory, unpadded);
  EXPECT_GT(max_abs_diff(layer.forward_cached(x.slice(1, 0, 1), self, unpadded).select(0, 1),
                     full.slice(1, 0, 1).select(0, 1)),
            1e-6);
}

TEST(TransformerDecoderLayer, DropoutOnlyInTraining) {
  Rng rng(8);
  TransformerDecoderLayer layer({.d_model = 8, .n_heads = 2, .d_ff = 16, .dropout = 0.3}, rng);
  const Tensor x = Tensor::randn({2, 5, 8}, rng);       // (B, T, E)
  const Tensor memory = Tensor::randn({2, 3, 8}, rng);  // (B, S, E)
  AttentionMask causal;
  causal.causal = true;
  EXPECT_GT(max_rel_diff(layer.forward(x, memory, causal, {}), layer.forward(x, memory, causal, {})),
            1e-4);
  layer.eval();
  EXPECT_EQ(max_rel_diff(layer.forward(x, memory, causal, {}), layer.forward(x, memory, causal, {})),
            0.0);
}

TEST(TransformerDecoderLayer, BadShapesThrow) {
  Rng rng(9);
  TransformerDecoderLayer layer({.d_model = 8, .n_heads = 2, .d_ff = 16}, rng);
  const Tensor x = Tensor::randn({2, 5, 8}, rng);  // (B, T, E)
  expect_error<ShapeError>([&] { layer.forward(x, Tensor::randn({2, 3, 6}, rng), {}, {}); },
                           {"(2, 3, 6)"});
  expect_error<ShapeError>([&] { layer.forward(x, Tensor::randn({3, 3, 8}, rng), {}, {}); },
                           {"(3, 3, 8)"});
  expect_error<ValueError>(
      [&] { TransformerDecoderLayer bad({.d_model = 8, .n_heads = 3, .d_ff = 16}, rng); },
      {"8", "3"});
  layer.eval();
  NoGradGuard ng;
  KvCache self = layer.make_cache(2, 4);
  CrossKvCache cross;
  layer.cache_memory(Tensor::randn({2, 3, 8}, rng), cross);
  expect_error<ShapeError>([&] { layer.forward_cached(Tensor::randn({3, 1, 8}, rng), self, cross); },
                           {"(3, 1, 8)"});
}
