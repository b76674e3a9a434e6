// The basic layers: values against naive loops or hand-computed numbers, torch-style
// initialisation ranges, parameter names, finite-difference gradients of inputs and parameters
// (F64 via Module::to), bf16 inference weights, and the constructor/forward checks.
//   Letters: N batch, C channels, O output channels, L sequence, D features.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/autograd/node.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/tensor/rng.hpp"
#include "nn/module_gradcheck.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::max_rel_diff;
using focus::testing::module_gradcheck;
using focus::testing::rand_input;

using Inputs = std::vector<Tensor>;

namespace {

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (const auto& [n, t] : nt) out.push_back(n);
  return out;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

TEST(Linear, ValuesInitAndNames) {
  Rng rng(1);
  Linear lin(5, 3, rng);
  EXPECT_EQ(names(lin.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(lin.weight.shape(), Shape({3, 5}));
  EXPECT_LE(max_abs(lin.weight), 1.0 / std::sqrt(5.0));
  EXPECT_LE(max_abs(lin.bias), 1.0 / std::sqrt(5.0));
  EXPECT_GT(max_abs(lin.weight), 0.5 / std::sqrt(5.0));  // actually spread over the range
  const Tensor x = Tensor::randn({2, 4, 5}, rng);        // (N, L, IN)
  const auto y = lin.forward(x).to_vector<double>();
  const auto px = x.to_vector<double>(), pw = lin.weight.to_vector<double>(),
             pb = lin.bias.to_vector<double>();
  for (int64_t r = 0; r < 8; ++r)
    for (int64_t o = 0; o < 3; ++o) {
      double s = pb[o];
      for (int64_t i = 0; i < 5; ++i) s += px[r * 5 + i] * pw[o * 5 + i];
      EXPECT_NEAR(y[r * 3 + o], s, 1e-5);
    }
  Linear nob(5, 3, rng, false);
  EXPECT_EQ(names(nob.named_parameters()), (std::vector<std::string>{"weight"}));
  EXPECT_THROW(Linear(0, 3, rng), ValueError);
  EXPECT_THROW(lin.forward(Tensor::zeros({2, 4})), ShapeError);
}

TEST(Linear, Gradients) {
  Rng rng(2);
  Linear lin(4, 3, rng);
  EXPECT_TRUE(module_gradcheck(lin, [&](const Inputs& x) { return lin.forward(x[0]); },
                               {rand_input({2, 2, 4}, rng)}));
}

// set_inference_dtype(BF16): under NoGradGuard Linear and Embedding::project (of a table marked
// as a projection) multiply by the weight rounded to bf16 (packed panels up to 16 rows, the widened
// copy through the GEMM beyond); with grad enabled, and after train(true), load_state_dict() or
// to(), the F32 weight runs again.
TEST(Linear, Bf16InferenceWeights) {
  Rng rng(11);
  Linear lin(37, 21, rng);
  Embedding emb(50, 37, rng);
  emb.mark_projection();
  const Tensor lw = lin.weight.to(DType::BF16).to(DType::F32);  // (OUT, IN), rounded
  const Tensor ew = emb.weight.to(DType::BF16).to(DType::F32);  // (V, D), rounded
  for (int64_t rows : {1, 5, 16, 40}) {
    const Tensor x = Tensor::randn({rows, 37}, rng);  // (R, IN)
    const Tensor exact = lin.forward(x), exact_p = emb.project(x);
    lin.set_inference_dtype(DType::BF16);
    emb.set_inference_dtype(DType::BF16);
    {
      NoGradGuard ng;
      const Tensor y = lin.forward(x), p = emb.project(x);
      EXPECT_LT(max_abs(sub(y, linear(x, lw, lin.bias))), 1e-5 * (1 + max_abs(y))) << rows;
      EXPECT_LT(max_abs(sub(p, linear(x, ew))), 1e-5 * (1 + max_abs(p))) << rows << " rows";
      EXPECT_GT(max_abs(sub(y, exact)), 0.0) << "the bf16 weight ran, " << rows << " rows";
      EXPECT_GT(max_abs(sub(p, exact_p)), 0.0) << rows << " rows";
    }
    EXPECT_EQ(lin.forward(x).to_vector<float>(), exact.to_vector<float>());  // grad enabled
    EXPECT_EQ(emb.project(x).to_vector<float>(), exact_p.to_vector<float>());
    lin.set_inference_dtype(DType::F32);
    NoGradGuard ng;
    EXPECT_EQ(lin.forward(x).to_vector<float>(), exact.to_vector<float>());
  }
  const Tensor x = Tensor::randn({3, 37}, rng);  // (R, IN)
  const Tensor exact = lin.forward(x);
  auto runs_f32 = [&] {
    NoGradGuard ng;
    return lin.forward(x).to_vector<float>() == exact.to_vector<float>();
  };
  lin.set_inference_dtype(DType::BF16);
  EXPECT_FALSE(runs_f32());
  lin.train();
  EXPECT_TRUE(runs_f32());
  lin.set_inference_dtype(DType::BF16);
  lin.load_state_dict(lin.state_dict());
  EXPECT_TRUE(runs_f32());
  EXPECT_THROW(lin.set_inference_dtype(DType::I32), DTypeError);  // I8: tests/nn/int8_layers_test
  // A table not marked as a projection keeps no copy.
  Embedding lookup(50, 37, rng);
  const Tensor lookup_exact = lookup.project(x);
  lookup.set_inference_dtype(DType::BF16);
  {
    NoGradGuard ng;
    EXPECT_EQ(lookup.project(x).to_vector<float>(), lookup_exact.to_vector<float>());
  }
  // linear() with a BF16 weight: inference only, F32 input and bias.
  const Tensor wb = lin.weight.to(DType::BF16);
  EXPECT_THROW(linear(x.to(DType::F64), wb), DTypeError);
  EXPECT_THROW(linear(x, wb, lin.bias.to(DType::F64)), DTypeError);
  Tensor xg = Tensor::randn({3, 37}, rng);  // (R, IN)
  xg.requires_grad_();
  EXPECT_THROW(linear(xg, wb), DTypeError);
}

TEST(ModuleTo, ConvertsInPlaceKeepingHandles) {
  Rng rng(3);
  Linear lin(4, 3, rng);
  const Tensor w = lin.weight;
  const auto before = w.to_vector<double>();
  lin.to(DType::F64);
  EXPECT_EQ(w.dtype(), DType::F64);  // the same tensor, seen through an old handle
  EXPECT_EQ(lin.state_dict().at("weight").dtype(), DType::F64);
  EXPECT_TRUE(lin.weight.requires_grad());
  const auto after = w.to_vector<double>();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i], after[i]);
  EXPECT_EQ(lin.forward(Tensor::zeros({1, 4}, DType::F64)).dtype(), DType::F64);
  EXPECT_THROW(lin.to(DType::I64), DTypeError);
}

TEST(Embedding, LooksUpRowsAndGradients) {
  Rng rng(4);
  Embedding emb(6, 3, rng);
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{5, 0, 5, 2}, {2, 2});  // (N, L)
  const Tensor y = emb.forward(idx);                                                 // (N, L, D)
  ASSERT_EQ(y.shape(), Shape({2, 2, 3}));
  const auto pw = emb.weight.to_vector<double>(), py = y.to_vector<double>();
  const int64_t rows[] = {5, 0, 5, 2};
  for (int r = 0; r < 4; ++r)
    for (int d = 0; d < 3; ++d) EXPECT_EQ(py[r * 3 + d], pw[rows[r] * 3 + d]);
  // Index 5 twice: the gradient accumulates.
  EXPECT_TRUE(module_gradcheck(emb, [&](const Inputs&) { return emb.forward(idx); }, {}));
}

TEST(LayerNorm, MatchesNaiveAndGradients) {
  Rng rng(5);
  LayerNorm ln(4);
  Tensor w = ln.weight, b = ln.bias;
  w.copy_(Tensor::randn({4}, rng));
  b.copy_(Tensor::randn({4}, rng));
  const Tensor x = Tensor::randn({3, 4}, rng, DType::F32, 2.0);  // (N, D)
  const auto y = ln.forward(x).to_vector<double>();
  const auto px = x.to_vector<double>(), pw = w.to_vector<double>(), pb = b.to_vector<double>();
  for (int r = 0; r < 3; ++r) {
    double m = 0, v = 0;
    for (int d = 0; d < 4; ++d) m += px[r * 4 + d] / 4;
    for (int d = 0; d < 4; ++d) v += (px[r * 4 + d] - m) * (px[r * 4 + d] - m) / 4;
    for (int d = 0; d < 4; ++d)
      EXPECT_NEAR(y[r * 4 + d], (px[r * 4 + d] - m) / std::sqrt(v + 1e-5) * pw[d] + pb[d], 1e-4);
  }
  EXPECT_TRUE(module_gradcheck(ln, [&](const Inputs& x) { return ln.forward(x[0]); },
                               {rand_input({2, 3, 4}, rng)}));
  LayerNorm plain(4, 1e-5, false);
  EXPECT_EQ(plain.num_parameters(), 0);
}

TEST(Conv2d, MatchesNaiveAndGradients) {
  Rng rng(6);
  Conv2d conv(2, 3, 3, rng, /*stride=*/2, /*padding=*/1);
  EXPECT_EQ(names(conv.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_LE(max_abs(conv.weight), 1.0 / std::sqrt(2.0 * 9));
  const Tensor x = Tensor::randn({2, 2, 5, 4}, rng);  // (N, C, H, W)
  const Tensor y = conv.forward(x);                   // (N, O, 3, 2)
  ASSERT_EQ(y.shape(), Shape({2, 3, 3, 2}));
  const auto px = x.to_vector<double>(), pw = conv.weight.to_vector<double>(),
             pb = conv.bias.to_vector<double>(), py = y.to_vector<double>();
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 3; ++o)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j) {
          double s = pb[o];
          for (int c = 0; c < 2; ++c)
            for (int ki = 0; ki < 3; ++ki)
              for (int kj = 0; kj < 3; ++kj) {
                const int r = i * 2 - 1 + ki, col = j * 2 - 1 + kj;
                if (r < 0 || r >= 5 || col < 0 || col >= 4) continue;
                s += px[((n * 2 + c) * 5 + r) * 4 + col] * pw[((o * 2 + c) * 3 + ki) * 3 + kj];
              }
          EXPECT_NEAR(py[((n * 3 + o) * 3 + i) * 2 + j], s, 1e-5);
        }
  EXPECT_TRUE(module_gradcheck(conv, [&](const Inputs& x) { return conv.forward(x[0]); },
                               {rand_input({1, 2, 4, 3}, rng)}));
  Conv2d nob(2, 3, 3, rng, 1, 0, false);
  EXPECT_EQ(nob.num_parameters(), 3 * 2 * 9);
  EXPECT_THROW(Conv2d(2, 3, 0, rng), ValueError);
}

namespace {
struct WithFixedBuffer : Module {
  WithFixedBuffer() {
    register_buffer("stat", Tensor::zeros({2}));
    register_fixed_buffer("table", Tensor::ones({3}));
    register_module("bn", std::make_shared<BatchNorm2d>(1));
  }
};
}  // namespace

TEST(Module, FixedBuffersAreSavedButNotUpdatedBuffers) {
  WithFixedBuffer m;
  EXPECT_EQ(names(m.named_buffers()),
            (std::vector<std::string>{"stat", "table", "bn.running_mean", "bn.running_var"}));
  EXPECT_EQ(names(m.named_updated_buffers()),
            (std::vector<std::string>{"stat", "bn.running_mean", "bn.running_var"}));
  EXPECT_EQ(m.state_dict().count("table"), 1u);
}

TEST(BatchNorm2d, TrainNormalisesAndUpdatesRunningStats) {
  Rng rng(7);
  BatchNorm2d bn(2);
  EXPECT_EQ(names(bn.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(names(bn.named_buffers()), (std::vector<std::string>{"running_mean", "running_var"}));
  const Tensor x = add(Tensor::randn({4, 2, 3, 3}, rng, DType::F64, 2.0), 1.5);  // (N, C, H, W)
  bn.to(DType::F64);
  const auto y = bn.forward(x).to_vector<double>();
  const auto px = x.to_vector<double>();
  const auto rm = bn.running_mean.to_vector<double>(), rv = bn.running_var.to_vector<double>();
  for (int c = 0; c < 2; ++c) {
    double m = 0, v = 0, ym = 0, yv = 0;
    const int cnt = 4 * 9;
    for (int n = 0; n < 4; ++n)
      for (int k = 0; k < 9; ++k) m += px[(n * 2 + c) * 9 + k] / cnt;
    for (int n = 0; n < 4; ++n)
      for (int k = 0; k < 9; ++k) {
        const double d = px[(n * 2 + c) * 9 + k] - m;
        v += d * d / cnt;
        ym += y[(n * 2 + c) * 9 + k] / cnt;
      }
    for (int n = 0; n < 4; ++n)
      for (int k = 0; k < 9; ++k) yv += y[(n * 2 + c) * 9 + k] * y[(n * 2 + c) * 9 + k] / cnt;
    EXPECT_NEAR(ym, 0.0, 1e-12);
    EXPECT_NEAR(yv, v / (v + 1e-5), 1e-9);
    EXPECT_NEAR(rm[c], 0.1 * m, 1e-12);
    EXPECT_NEAR(rv[c], 0.9 + 0.1 * v * cnt / (cnt - 1), 1e-12);  // unbiased batch variance
  }
  // Eval uses the running statistics.
  bn.eval();
  const auto ye = bn.forward(x).to_vector<double>();
  for (int c = 0; c < 2; ++c)
    EXPECT_NEAR(ye[(1 * 2 + c) * 9 + 4],
                (px[(1 * 2 + c) * 9 + 4] - rm[c]) / std::sqrt(rv[c] + 1e-5), 1e-12);
  EXPECT_THROW(bn.forward(Tensor::zeros({2, 3, 2, 2}, DType::F64)), ShapeError);
}

TEST(BatchNorm2d, Gradients) {
  Rng rng(8);
  BatchNorm2d bn(2);
  Tensor w = bn.weight;
  w.copy_(Tensor::rand({2}, rng, DType::F32, 0.5, 1.5));
  EXPECT_TRUE(module_gradcheck(bn, [&](const Inputs& x) { return bn.forward(x[0]); },
                               {rand_input({3, 2, 2, 2}, rng)}));
  bn.eval();
  EXPECT_TRUE(module_gradcheck(bn, [&](const Inputs& x) { return bn.forward(x[0]); },
                               {rand_input({3, 2, 2, 2}, rng)}));
}

TEST(Dropout, TrainMasksEvalIsIdentity) {
  Rng rng(9);
  Dropout drop(0.25, rng);
  const Tensor x = Tensor::ones({4000});
  const Tensor y = drop.forward(x);
  int zeros = 0;
  for (double v : y.to_vector<double>()) {
    if (v == 0.0)
      ++zeros;
    else
      EXPECT_NEAR(v, 1.0 / 0.75, 1e-6);
  }
  EXPECT_NEAR(zeros / 4000.0, 0.25, 0.03);
  EXPECT_GT(max_rel_diff(drop.forward(x), y), 0.0);  // the next call draws a fresh mask
  drop.eval();
  EXPECT_EQ(max_rel_diff(drop.forward(x), x), 0.0);
  EXPECT_THROW(Dropout(1.0, rng), ValueError);
}

TEST(Pooling, ShapesAndValues) {
  const Tensor x = Tensor::arange(2 * 3 * 4 * 4).view({2, 3, 4, 4});  // (N, C, H, W)
  EXPECT_EQ(MaxPool2d(2).forward(x).shape(), Shape({2, 3, 2, 2}));
  EXPECT_EQ(AvgPool2d(2).forward(x).shape(), Shape({2, 3, 2, 2}));
  const Tensor g = GlobalAvgPool().forward(x);  // (N, C)
  ASSERT_EQ(g.shape(), Shape({2, 3}));
  // Channel (0, 0) holds 0..15: mean 7.5; max of its top-left 2x2 block {0, 1, 4, 5} is 5.
  EXPECT_DOUBLE_EQ(g.to_vector<double>()[0], 7.5);
  EXPECT_DOUBLE_EQ(MaxPool2d(2).forward(x).to_vector<double>()[0], 5.0);
  EXPECT_DOUBLE_EQ(AvgPool2d(2).forward(x).to_vector<double>()[0], 2.5);
}

TEST(PositionalEncoding, LearnedAddsRowsAndGradients) {
  Rng rng(10);
  LearnedPositionalEncoding pe(5, 3, rng);
  EXPECT_EQ(names(pe.named_parameters()), (std::vector<std::string>{"weight"}));
  EXPECT_LT(max_abs(pe.weight), 0.02 * 6);
  const Tensor x = Tensor::randn({2, 4, 3}, rng);  // (N, L, D)
  const auto y = pe.forward(x).to_vector<double>(), px = x.to_vector<double>(),
             pw = pe.weight.to_vector<double>();
  for (int n = 0; n < 2; ++n)
    for (int l = 0; l < 4; ++l)
      for (int d = 0; d < 3; ++d)
        EXPECT_NEAR(y[(n * 4 + l) * 3 + d], px[(n * 4 + l) * 3 + d] + pw[l * 3 + d], 1e-6);
  EXPECT_TRUE(module_gradcheck(pe, [&](const Inputs& x) { return pe.forward(x[0]); },
                               {rand_input({2, 3, 3}, rng)}));
  EXPECT_THROW(pe.forward(Tensor::zeros({1, 6, 3}, DType::F64)), ShapeError);  // L > Lmax
}

TEST(PositionalEncoding, SinusoidalTableAndGradients) {
  SinusoidalPositionalEncoding pe(6, 4);
  EXPECT_EQ(pe.num_parameters(), 0);
  EXPECT_TRUE(pe.state_dict().empty());
  const auto t = pe.table(DType::F64).to_vector<double>();  // (Lmax, D)
  // pe[p, 0] = sin(p), pe[p, 1] = cos(p), pe[p, 2] = sin(p / 100), pe[p, 3] = cos(p / 100).
  for (int p = 0; p < 6; ++p) {
    EXPECT_NEAR(t[p * 4 + 0], std::sin(p), 1e-12);
    EXPECT_NEAR(t[p * 4 + 1], std::cos(p), 1e-12);
    EXPECT_NEAR(t[p * 4 + 2], std::sin(p / 100.0), 1e-12);
    EXPECT_NEAR(t[p * 4 + 3], std::cos(p / 100.0), 1e-12);
  }
  Rng rng(11);
  EXPECT_TRUE(
      gradcheck([&](const Inputs& x) { return pe.forward(x[0]); }, {rand_input({2, 5, 4}, rng)}));
  EXPECT_EQ(pe.forward(Tensor::zeros({1, 2, 4})).dtype(), DType::F32);
  EXPECT_THROW(pe.forward(Tensor::zeros({1, 2, 3})), ShapeError);
}

TEST(SqueezeExcitation, MatchesNaiveAndGradients) {
  Rng rng(12);
  SqueezeExcitation se(4, 2, rng);  // hidden 2
  EXPECT_EQ(names(se.named_parameters()),
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  const Tensor x = Tensor::randn({2, 4, 3, 3}, rng);  // (N, C, H, W)
  const auto y = se.forward(x).to_vector<double>(), px = x.to_vector<double>();
  const auto w1 = se.fc1->weight.to_vector<double>(), b1 = se.fc1->bias.to_vector<double>();
  const auto w2 = se.fc2->weight.to_vector<double>(), b2 = se.fc2->bias.to_vector<double>();
  for (int n = 0; n < 2; ++n) {
    double pooled[4], hidden[2];
    for (int c = 0; c < 4; ++c) {
      pooled[c] = 0;
      for (int k = 0; k < 9; ++k) pooled[c] += px[(n * 4 + c) * 9 + k] / 9;
    }
    for (int h = 0; h < 2; ++h) {
      hidden[h] = b1[h];
      for (int c = 0; c < 4; ++c) hidden[h] += w1[h * 4 + c] * pooled[c];
      hidden[h] = std::max(hidden[h], 0.0);
    }
    for (int c = 0; c < 4; ++c) {
      double s = b2[c];
      for (int h = 0; h < 2; ++h) s += w2[c * 2 + h] * hidden[h];
      const double gate = 1 / (1 + std::exp(-s));
      for (int k = 0; k < 9; ++k)
        EXPECT_NEAR(y[(n * 4 + c) * 9 + k], px[(n * 4 + c) * 9 + k] * gate, 1e-5);
    }
  }
  // The relu's inputs are random sums, far from 0 with probability ~1 (no kink in the check).
  EXPECT_TRUE(module_gradcheck(se, [&](const Inputs& x) { return se.forward(x[0]); },
                               {rand_input({2, 4, 2, 2}, rng)}));
  EXPECT_THROW(se.forward(Tensor::zeros({2, 3, 2, 2}, DType::F64)), ShapeError);
  EXPECT_EQ(SqueezeExcitation(3, 8, rng).fc1->out_features(), 1);  // at least one hidden unit
}
