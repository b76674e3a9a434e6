// Golden tests of focus's layers against PyTorch 1.13 (fixtures from tools/make_fixtures.py):
// LayerNorm; Conv2d -> BatchNorm2d (training) -> SqueezeExcitation -> ReLU, with the running
// statistics after the step; the pre-norm GELU TransformerEncoderLayer; and the pre-norm GELU
// TransformerDecoderLayer (causal self-attention, cross-attention to a padded memory; torch's
// multihead_attn is focus's cross_attn, renamed by the fixture script). Each case loads
// torch's weights, runs forward and backward with the fixture's R, and compares the output and
// every gradient by name (tolerances in golden.hpp). F64 and F32 twins.
#include <gtest/gtest.h>

#include <memory>

#include "focus/nn/conv.hpp"
#include "focus/nn/norm.hpp"
#include "focus/nn/squeeze_excitation.hpp"
#include "focus/nn/transformer.hpp"
#include "focus/ops/unary.hpp"
#include "focus/tensor/rng.hpp"
#include "golden/golden.hpp"

using namespace focus;
using golden::Fixture;

namespace {

void check_layer_norm(const std::string& stem) {
  const Fixture fx(stem);
  LayerNorm ln(fx.at("weight").size(0), fx.meta_double("eps"));
  ln.to(fx.dtype());
  fx.load_into(ln);
  Tensor x = fx.input("input");  // (B, L, C)
  Tensor y = ln.forward(x);      // (B, L, C)
  EXPECT_TRUE(golden::matches(fx, "output", y));
  y.backward(fx.at("grad_output"));
  golden::expect_gradients(fx, ln, {{"input", x}});
}

// The fixture's block: conv (3x3, stride 1, padding 1) -> bn -> se -> relu, named as torch's.
struct ConvBnSe : Module {
  ConvBnSe(int64_t C, int64_t O, int64_t reduction, double eps, double momentum, Rng& rng)
      : conv(register_module("conv", std::make_shared<Conv2d>(C, O, 3, rng, 1, 1, true))),
        bn(register_module("bn", std::make_shared<BatchNorm2d>(O, eps, momentum))),
        se(register_module("se", std::make_shared<SqueezeExcitation>(O, reduction, rng))) {}
  Tensor forward(const Tensor& x) { return relu(se->forward(bn->forward(conv->forward(x)))); }

  const std::shared_ptr<Conv2d> conv;
  const std::shared_ptr<BatchNorm2d> bn;
  const std::shared_ptr<SqueezeExcitation> se;
};

void check_conv_bn_se(const std::string& stem) {
  const Fixture fx(stem);
  const Tensor w = fx.at("conv.weight");  // (O, C, 3, 3)
  Rng rng(1);
  ConvBnSe m(w.size(1), w.size(0), fx.meta_int("se_reduction"), fx.meta_double("bn_eps"),
             fx.meta_double("bn_momentum"), rng);
  m.to(fx.dtype());
  fx.load_into(m);
  m.train();
  Tensor x = fx.input("input");  // (N, C, H, W)
  Tensor y = m.forward(x);       // (N, O, H, W)
  EXPECT_TRUE(golden::matches(fx, "output", y));
  EXPECT_TRUE(golden::matches(fx, "final.bn.running_mean", m.bn->running_mean));
  EXPECT_TRUE(golden::matches(fx, "final.bn.running_var", m.bn->running_var));
  y.backward(fx.at("grad_output"));
  golden::expect_gradients(fx, m, {{"input", x}});
}

void check_encoder_layer(const std::string& stem) {
  const Fixture fx(stem);
  ASSERT_EQ(fx.meta("norm_first"), "True");
  TransformerEncoderLayerOptions opt;
  opt.d_model = fx.meta_int("d_model");
  opt.n_heads = fx.meta_int("num_heads");
  opt.d_ff = fx.meta_int("dim_feedforward");
  opt.dropout = fx.meta_double("dropout");
  opt.norm_eps = fx.meta_double("eps");
  Rng rng(2);
  TransformerEncoderLayer layer(opt, rng);
  layer.to(fx.dtype());
  fx.load_into(layer);
  Tensor x = fx.input("input");  // (B, L, E)
  Tensor y = layer.forward(x);   // (B, L, E)
  EXPECT_TRUE(golden::matches(fx, "output", y));
  y.backward(fx.at("grad_output"));
  golden::expect_gradients(fx, layer, {{"input", x}});
}

void check_decoder_layer(const std::string& stem) {
  const Fixture fx(stem);
  ASSERT_EQ(fx.meta("norm_first"), "True");
  TransformerDecoderLayerOptions opt;
  opt.d_model = fx.meta_int("d_model");
  opt.n_heads = fx.meta_int("num_heads");
  opt.d_ff = fx.meta_int("dim_feedforward");
  opt.dropout = fx.meta_double("dropout");
  opt.norm_eps = fx.meta_double("eps");
  Rng rng(3);
  TransformerDecoderLayer layer(opt, rng);
  layer.to(fx.dtype());
  fx.load_into(layer);
  const Tensor tgt_mask = fx.at("tgt_mask");  // (T, T) I64, 1 = masked
  const int64_t T = tgt_mask.size(0);
  const auto tm = tgt_mask.to_vector<int64_t>();
  for (int64_t i = 0; i < T; ++i)  // the fixture's self mask is the causal one focus builds
    for (int64_t j = 0; j < T; ++j) ASSERT_EQ(tm[size_t(i * T + j)], j > i ? 1 : 0);
  AttentionMask self_mask, memory_mask;
  self_mask.causal = true;
  memory_mask.key_padding_mask = fx.at("memory_key_padding_mask");  // (B, S)
  Tensor x = fx.input("input");                                      // (B, T, E)
  Tensor memory = fx.input("memory");                                // (B, S, E)
  Tensor y = layer.forward(x, memory, self_mask, memory_mask);       // (B, T, E)
  EXPECT_TRUE(golden::matches(fx, "output", y));
  y.backward(fx.at("grad_output"));
  golden::expect_gradients(fx, layer, {{"input", x}, {"memory", memory}});
}

}  // namespace

TEST(GoldenLayerNorm, F64) { check_layer_norm("layer_norm_f64"); }
TEST(GoldenLayerNorm, F32) { check_layer_norm("layer_norm_f32"); }
TEST(GoldenConvBnSe, F64) { check_conv_bn_se("conv_bn_se_f64"); }
TEST(GoldenConvBnSe, F32) { check_conv_bn_se("conv_bn_se_f32"); }
TEST(GoldenEncoderLayer, F64) { check_encoder_layer("encoder_layer_f64"); }
TEST(GoldenEncoderLayer, F32) { check_encoder_layer("encoder_layer_f32"); }
TEST(GoldenDecoderLayer, F64) { check_decoder_layer("decoder_layer_f64"); }
TEST(GoldenDecoderLayer, F32) { check_decoder_layer("decoder_layer_f32"); }
