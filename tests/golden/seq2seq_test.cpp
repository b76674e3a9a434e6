// Golden test of the encoder-decoder Transformer (models/seq2seq.hpp) against PyTorch 1.13: the
// fixture's model is nn.Transformer's encoder and decoder stacks (pre-norm, GELU, with their final
// norms) between embeddings * sqrt(E) + sinusoidal positions and the output projection tied to
// the target embedding (tools/make_fixtures.py, make_seq2seq). A padded batch of 3 (sources of
// 6, 4, 2 tokens; right-padded targets, id 0 ignored by the label-smoothed loss): the logits of
// every position (padding rows included), the loss and the loss's gradient with respect to every
// parameter, by name (tolerances in golden.hpp). F64 and F32 twins.
#include <gtest/gtest.h>

#include "focus/autograd/node.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/rng.hpp"
#include "golden/golden.hpp"

using namespace focus;
using golden::Fixture;

namespace {

void check_seq2seq(const std::string& stem) {
  const Fixture fx(stem);
  ASSERT_EQ(fx.meta("norm_first"), "True");
  ASSERT_EQ(fx.meta("positions"), "sinusoidal");
  ASSERT_EQ(fx.meta_int("ignore_index"), 0);  // Seq2Seq::loss ignores target id 0
  Seq2SeqConfig c;
  c.src_vocab = fx.meta_int("src_vocab");
  c.tgt_vocab = fx.meta_int("tgt_vocab");
  c.d_model = fx.meta_int("d_model");
  c.n_enc_layers = fx.meta_int("n_enc_layers");
  c.n_dec_layers = fx.meta_int("n_dec_layers");
  c.n_heads = fx.meta_int("num_heads");
  c.d_ff = fx.meta_int("dim_feedforward");
  c.dropout = fx.meta_double("dropout");
  c.max_len = 16;
  Rng rng(4);
  Seq2Seq model(c, rng);
  model.to(fx.dtype());
  fx.load_into(model);
  const Tensor src = fx.at("src"), src_len = fx.at("src_len");       // (B, S), (B)
  const Tensor tgt_in = fx.at("tgt_in"), tgt_out = fx.at("tgt_out");  // (B, T) each
  {
    NoGradGuard ng;
    EXPECT_TRUE(golden::matches(fx, "logits", model.forward(src, src_len, tgt_in)));  // (B, T, V)
  }
  Tensor loss = model.loss(src, src_len, tgt_in, tgt_out, fx.meta_double("label_smoothing"));
  EXPECT_TRUE(golden::matches(fx, "loss", loss));
  loss.backward();
  golden::expect_gradients(fx, model, {});
}

}  // namespace

TEST(GoldenSeq2Seq, F64) { check_seq2seq("seq2seq_f64"); }
TEST(GoldenSeq2Seq, F32) { check_seq2seq("seq2seq_f32"); }
