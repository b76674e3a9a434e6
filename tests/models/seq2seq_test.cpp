// Seq2Seq (models/seq2seq.hpp): F64 finite-difference gradients of the label-smoothed loss with
// respect to every parameter (tiny model: d_model 8, one encoder and one decoder layer;
// sinusoidal positions, and learned positions with shared embeddings); cached decoding
// (start_decoding + decode_step, token by token and in chunks, with the state reordered as beam
// search does) against decode()'s teacher-forced logits row for row; invariance of the logits to
// extra source padding (whatever the padded ids) and of the loss to extra target padding; the
// cross-attention maps; parameter names with and without shared embeddings; the JSON config
// round trip and its errors; typed errors with the shapes on bad input. The comparison with
// PyTorch is the golden test (tests/golden/seq2seq_test.cpp).
//   Letters: B batch, S source length, T target length, V target vocabulary, E model dim.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/tensor/rng.hpp"
#include "support/gradcheck.hpp"
#include "nn/module_gradcheck.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::module_gradcheck;
using Inputs = std::vector<Tensor>;

namespace {

Seq2SeqConfig tiny_config(const std::string& positions = "sinusoidal", bool shared = false) {
  Seq2SeqConfig c;
  c.src_vocab = shared ? 9 : 7;
  c.tgt_vocab = 9;
  c.d_model = 8;
  c.n_enc_layers = 1;
  c.n_dec_layers = 1;
  c.n_heads = 2;
  c.d_ff = 12;
  c.max_len = 10;
  c.positions = positions;
  c.share_embeddings = shared;
  c.dropout = 0.0;
  return c;
}

Seq2SeqConfig small_config() {  // two layers each, grouped-query heads
  Seq2SeqConfig c = tiny_config();
  c.src_vocab = 13;
  c.tgt_vocab = 11;
  c.d_model = 16;
  c.n_enc_layers = 2;
  c.n_dec_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.d_ff = 24;
  c.max_len = 12;
  return c;
}

Tensor ids(std::vector<int64_t> v, Shape s) { return Tensor::from_vector(v, s); }

using focus::testing::max_abs_diff;

// A batch for tiny_config(): sources of 5, 3 and 1 tokens (ids 1..6, right-padded with 0);
// targets tgt_in = <s>=1 y and tgt_out = y </s>=2 with 3, 1 and 2 tokens y, right-padded.
struct Batch {
  Tensor src = ids({3, 4, 5, 6, 1,  //
                    2, 6, 3, 0, 0,  //
                    5, 0, 0, 0, 0},
                   {3, 5});  // (B, S)
  Tensor src_len = ids({5, 3, 1}, {3});
  Tensor tgt_in = ids({1, 4, 8, 3,  //
                       1, 5, 0, 0,  //
                       1, 7, 6, 0},
                      {3, 4});  // (B, T)
  Tensor tgt_out = ids({4, 8, 3, 2,  //
                        5, 2, 0, 0,  //
                        7, 6, 2, 0},
                       {3, 4});  // (B, T)
};

}  // namespace

TEST(Seq2Seq, LossGradientsOfEveryParameter) {
  const Batch d;
  for (const auto& [positions, shared] :
       {std::pair<std::string, bool>{"sinusoidal", false}, {"learned", true}}) {
    Rng rng(1);
    Seq2Seq model(tiny_config(positions, shared), rng);
    focus::testing::GradcheckOptions opt;
    opt.atol = 1e-7;
    EXPECT_TRUE(module_gradcheck(
        model,
        [&](const Inputs&) { return model.loss(d.src, d.src_len, d.tgt_in, d.tgt_out, 0.1); },
        {}, opt))
        << positions << (shared ? " shared" : "");
  }
}

// decode_step over the whole target at once, token by token and in chunks (3, then 1 by 1)
// equals decode()'s teacher-forced logits; then the state is reordered (rows 2, 0, 0, 1, as beam
// search keeps and duplicates hypotheses) and decoding continues: each new row equals decode()
// over its source row's target followed by the new token.
TEST(Seq2Seq, CachedDecodingEqualsTeacherForcedLogits) {
  for (const DType dt : {DType::F64, DType::F32}) {
    const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
    Rng rng(5);
    Seq2Seq model(small_config(), rng);
    model.to(dt);
    model.eval();
    const int64_t B = 3, S = 6, T = 5;
    const Tensor src = ids({1, 2, 3, 4, 5, 6,  //
                            7, 8, 9, 0, 0, 0,  //
                            10, 11, 0, 0, 0, 0},
                           {B, S});
    const Tensor src_len = ids({6, 3, 2}, {B});
    const Tensor tgt = ids({1, 3, 4, 5, 6, 1, 7, 8, 9, 10, 1, 2, 4, 6, 8}, {B, T});  // (B, T)
    NoGradGuard ng;
    const Tensor memory = model.encode(src, src_len);           // (B, S, E)
    const Tensor full = model.decode(tgt, memory, src_len);     // (B, T, V)
    for (const std::vector<int64_t>& chunks :
         {std::vector<int64_t>{1, 1, 1, 1, 1}, {3, 1, 1}, {5}}) {
      Seq2SeqDecodeState st = model.start_decoding(memory, src_len, /*capacity=*/2);
      EXPECT_EQ(st.rows(), B);
      int64_t at = 0;
      for (const int64_t n : chunks) {
        const Tensor y = model.decode_step(tgt.slice(1, at, at + n).contiguous(), st);  // (B, n, V)
        EXPECT_LT(max_abs_diff(y, full.slice(1, at, at + n)), tol) << "at " << at << " chunk " << n;
        at += n;
      }
    }
    // Reorder after 4 tokens, then one more token per (new) row.
    Seq2SeqDecodeState st = model.start_decoding(memory, src_len, 4);
    model.decode_step(tgt.slice(1, 0, 4).contiguous(), st);
    const std::vector<int64_t> from = {2, 0, 0, 1};
    st.reorder(ids(from, {4}));
    EXPECT_EQ(st.rows(), 4);
    const std::vector<int64_t> next = {3, 9, 5, 10};
    const Tensor y = model.decode_step(ids(next, {4, 1}), st);  // (4, 1, V)
    for (int64_t i = 0; i < 4; ++i) {
      const int64_t b = from[size_t(i)];
      std::vector<int64_t> seq = tgt.select(0, b).contiguous().to_vector<int64_t>();
      seq[4] = next[size_t(i)];
      const Tensor ref = model.decode(ids(seq, {1, T}), memory.slice(0, b, b + 1),
                                      src_len.slice(0, b, b + 1));  // (1, T, V)
      EXPECT_LT(max_abs_diff(y.select(0, i), ref.select(0, 0).slice(0, 4, 5)), tol) << "row " << i;
    }
  }
}

TEST(Seq2Seq, SourcePaddingLeavesLogitsAndTargetPaddingLeavesLossUnchanged) {
  Rng rng(2);
  Seq2Seq model(tiny_config(), rng);
  model.to(DType::F64);
  const Batch d;
  const Tensor logits = model.forward(d.src, d.src_len, d.tgt_in);  // (B, T, V)
  // The same sources with 3 more padding positions (S 5 -> 8), the padded ids arbitrary (not 0):
  // only src_len decides what the model sees.
  const auto s = d.src.to_vector<int64_t>(), len = d.src_len.to_vector<int64_t>();
  std::vector<int64_t> longer;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t j = 0; j < 8; ++j) longer.push_back(j < len[b] ? s[size_t(b * 5 + j)] : 1 + (j + b) % 6);
  EXPECT_LT(max_abs_diff(model.forward(ids(longer, {3, 8}), d.src_len, d.tgt_in), logits), 1e-12);
  // A source length changed: the logits change (the test can fail).
  EXPECT_GT(max_abs_diff(model.forward(ids(longer, {3, 8}), ids({5, 4, 1}, {3}), d.tgt_in)
                         .select(0, 1),
                     logits.select(0, 1)),
            1e-6);

  // Targets with 3 more padding columns (T 4 -> 7): the same loss.
  const double loss = model.loss(d.src, d.src_len, d.tgt_in, d.tgt_out, 0.1).item();
  const auto ti = d.tgt_in.to_vector<int64_t>(), to = d.tgt_out.to_vector<int64_t>();
  std::vector<int64_t> in7, out7;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t t = 0; t < 7; ++t) {
      in7.push_back(t < 4 ? ti[size_t(b * 4 + t)] : 0);
      out7.push_back(t < 4 ? to[size_t(b * 4 + t)] : 0);
    }
  EXPECT_NEAR(model.loss(d.src, d.src_len, ids(in7, {3, 7}), ids(out7, {3, 7}), 0.1).item(),
              loss, 1e-12);
  // The loss is the mean over the 9 real target tokens: dropping one changes it.
  out7[1] = 0;
  EXPECT_GT(std::abs(model.loss(d.src, d.src_len, ids(in7, {3, 7}), ids(out7, {3, 7}), 0.1)
                         .item() -
                     loss),
            1e-6);
}

TEST(Seq2Seq, CrossAttentionMapsSkipSourcePadding) {
  Rng rng(3);
  Seq2Seq model(small_config(), rng);
  model.to(DType::F64);
  const Batch d;
  std::vector<Tensor> maps;
  NoGradGuard ng;
  const Tensor memory = model.encode(d.src, d.src_len);
  model.decode(d.tgt_in, memory, d.src_len, &maps);
  ASSERT_EQ(maps.size(), 2u);
  for (const Tensor& m : maps) {
    ASSERT_EQ(m.shape(), Shape({3, 4, 4, 5}));  // (B, H, T, S)
    const auto w = m.to_vector<double>();
    const auto len = d.src_len.to_vector<int64_t>();
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t r = 0; r < 16; ++r) {  // every (head, query) row
        double sum = 0;
        for (int64_t j = 0; j < 5; ++j) {
          const double p = w[size_t((b * 16 + r) * 5 + j)];
          if (j >= len[b]) {
            EXPECT_EQ(p, 0.0) << b << " " << r << " " << j;
          }
          sum += p;
        }
        EXPECT_NEAR(sum, 1.0, 1e-12);
      }
  }
}

TEST(Seq2Seq, ParameterNamesAndSharedEmbeddings) {
  Rng rng(4);
  Seq2Seq model(tiny_config(), rng);
  const NamedTensors p = model.named_parameters();
  ASSERT_GE(p.size(), 3u);
  EXPECT_EQ(p[0].first, "src_emb.weight");
  EXPECT_EQ(p[1].first, "tgt_emb.weight");
  EXPECT_EQ(p[0].second.shape(), Shape({7, 8}));
  EXPECT_EQ(p[1].second.shape(), Shape({9, 8}));
  std::vector<std::string> names;
  for (const auto& [n, t] : p) names.push_back(n);
  for (const char* n : {"encoder.layers.0.self_attn.q_proj.weight", "encoder.norm.weight",
                        "decoder.layers.0.cross_attn.k_proj.weight",
                        "decoder.layers.0.norm3.bias", "decoder.norm.bias"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  for (const auto& n : names) EXPECT_EQ(n.find("pos"), std::string::npos) << n;  // sinusoidal

  Rng rng2(4);
  Seq2Seq shared(tiny_config("learned", true), rng2);
  const NamedTensors q = shared.named_parameters();
  int64_t tables = 0;
  for (const auto& [n, t] : q) {
    EXPECT_NE(n, "tgt_emb.weight");
    tables += n == "src_emb.weight";
  }
  EXPECT_EQ(tables, 1);
  EXPECT_EQ(q[0].first, "src_emb.weight");
  EXPECT_EQ(q[1].first, "src_pos.weight");
  EXPECT_EQ(q[2].first, "tgt_pos.weight");
  EXPECT_EQ(q[1].second.shape(), Shape({10, 8}));
  // One table: 9 x 8 fewer parameters than two tables of the same vocabulary, plus positions.
  Rng rng3(4);
  Seq2Seq unshared(tiny_config("learned", false), rng3);
  EXPECT_EQ(unshared.num_parameters() - shared.num_parameters(), 7 * 8);
  // The shared table gets gradient from the source, the target and the output projection.
  shared.to(DType::F64);
  const Batch d;
  shared.loss(d.src, d.src_len, d.tgt_in, d.tgt_out).backward();
  const auto g = q[0].second.grad().to_vector<double>();
  const auto row_norm = [&](int64_t r) {
    double s = 0;
    for (int64_t e = 0; e < 8; ++e) s += std::abs(g[size_t(r * 8 + e)]);
    return s;
  };
  EXPECT_GT(row_norm(8), 0.0);  // id 8: only in the targets
}

TEST(Seq2Seq, ConfigJsonRoundTripAndErrors) {
  Seq2SeqConfig c = small_config();
  c.positions = "learned";
  c.dropout = 0.25;
  c.attn_dropout = 0.05;
  c.max_len = 33;
  const Seq2SeqConfig r = seq2seq_config_from_json(to_json(c));
  EXPECT_EQ(to_json(r), to_json(c));
  EXPECT_EQ(r.src_vocab, 13);
  EXPECT_EQ(r.n_kv_heads, 2);
  EXPECT_EQ(r.positions, "learned");
  EXPECT_EQ(r.dropout, 0.25);
  EXPECT_EQ(r.attn_dropout, 0.05);
  EXPECT_EQ(r.max_len, 33);
  EXPECT_FALSE(r.share_embeddings);
  // Defaults for absent keys.
  EXPECT_EQ(to_json(seq2seq_config_from_json(nlohmann::json::object())), to_json(Seq2SeqConfig{}));

  nlohmann::json j = to_json(c);
  j["n_layers"] = 2;
  expect_error<ValueError>([&] { seq2seq_config_from_json(j); }, {"n_layers"});
  for (const auto& [key, bad] :
       {std::pair<std::string, nlohmann::json>{"d_model", "32"}, {"dropout", "high"},
        {"share_embeddings", 1}, {"n_heads", 2.5}, {"positions", 3}}) {
    nlohmann::json k = to_json(c);
    k[key] = bad;
    expect_error<ValueError>([&] { seq2seq_config_from_json(k); }, {key});
  }
  expect_error<ValueError>([&] { seq2seq_config_from_json(nlohmann::json::array()); }, {"object"});

  // Values the model rejects, naming the key and the value.
  Rng rng(1);
  const auto rejects = [&](auto edit, std::initializer_list<std::string> needles) {
    Seq2SeqConfig b = tiny_config();
    edit(b);
    expect_error<ValueError>([&] { Seq2Seq m(b, rng); }, needles);
  };
  rejects([](Seq2SeqConfig& b) { b.d_model = 0; }, {"d_model", "0"});
  rejects([](Seq2SeqConfig& b) { b.tgt_vocab = -3; }, {"tgt_vocab", "-3"});
  rejects([](Seq2SeqConfig& b) { b.positions = "rotary"; }, {"positions", "rotary"});
  rejects([](Seq2SeqConfig& b) { b.share_embeddings = true; }, {"share_embeddings", "7", "9"});
  rejects([](Seq2SeqConfig& b) { b.dropout = 1.0; }, {"dropout", "1"});
  rejects([](Seq2SeqConfig& b) { b.n_heads = 3; }, {"8", "3"});
}

TEST(Seq2Seq, BadShapesThrowWithTheShape) {
  Rng rng(6);
  Seq2Seq model(tiny_config(), rng);
  const Batch d;
  expect_error<ShapeError>([&] { model.encode(ids({1, 2, 3}, {3}), ids({3}, {1})); }, {"(3,)"});
  expect_error<ShapeError>([&] { model.encode(d.src, ids({5, 3}, {2})); }, {"(2,)", "(3)"});
  expect_error<ShapeError>(
      [&] { model.encode(Tensor::zeros({3, 5}, DType::F32), d.src_len); }, {"(3, 5)", "I64"});
  expect_error<ShapeError>(
      [&] { model.encode(Tensor::zeros({1, 11}, DType::I64), ids({1}, {1})); }, {"(1, 11)", "10"});
  expect_error<ValueError>([&] { model.encode(d.src, ids({5, 6, 1}, {3})); }, {"6", "[1, 5]"});
  expect_error<ValueError>([&] { model.encode(d.src, ids({5, 0, 1}, {3})); }, {"0", "[1, 5]"});
  const Tensor memory = model.encode(d.src, d.src_len);  // (3, 5, 8)
  expect_error<ShapeError>([&] { model.decode(d.tgt_in, memory.slice(0, 0, 2), d.src_len); },
                           {"(2, 5, 8)", "(3, S, 8)"});
  expect_error<ShapeError>([&] { model.decode(ids({1, 2}, {2}), memory, d.src_len); }, {"(2,)"});
  expect_error<ShapeError>(
      [&] { model.loss(d.src, d.src_len, d.tgt_in, d.tgt_out.slice(1, 0, 3)); },
      {"(3, 3)", "(3, 4)"});
  model.eval();
  NoGradGuard ng;
  expect_error<ShapeError>([&] { model.start_decoding(memory.select(0, 0), d.src_len); },
                           {"(5, 8)"});
  Seq2SeqDecodeState st = model.start_decoding(memory, d.src_len);
  expect_error<ShapeError>([&] { model.decode_step(ids({1, 1}, {2, 1}), st); }, {"(2, 1)", "3"});
  model.decode_step(ids({1, 1, 1, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8}, {3, 6}), st);
  expect_error<ValueError>([&] { model.decode_step(ids(std::vector<int64_t>(15, 1), {3, 5}), st); },
                           {"6", "5", "10"});
}
