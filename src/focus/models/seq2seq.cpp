// seq2seq model (see seq2seq.hpp).
#include "focus/models/seq2seq.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/models/config_reader.hpp"
#include "focus/nn/init.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

nlohmann::json to_json(const Seq2SeqConfig& c) {
  return {{"src_vocab", c.src_vocab},       {"tgt_vocab", c.tgt_vocab},
          {"d_model", c.d_model},           {"n_enc_layers", c.n_enc_layers},
          {"n_dec_layers", c.n_dec_layers}, {"n_heads", c.n_heads},
          {"n_kv_heads", c.n_kv_heads},     {"d_ff", c.d_ff},
          {"max_len", c.max_len},           {"positions", c.positions},
          {"share_embeddings", c.share_embeddings}, {"dropout", c.dropout},
          {"attn_dropout", c.attn_dropout}};
}

Seq2SeqConfig seq2seq_config_from_json(const nlohmann::json& j) {
  models::ConfigReader r(j, "transformer");
  Seq2SeqConfig c;
  c.src_vocab = r.get("src_vocab", c.src_vocab);
  c.tgt_vocab = r.get("tgt_vocab", c.tgt_vocab);
  c.d_model = r.get("d_model", c.d_model);
  c.n_enc_layers = r.get("n_enc_layers", c.n_enc_layers);
  c.n_dec_layers = r.get("n_dec_layers", c.n_dec_layers);
  c.n_heads = r.get("n_heads", c.n_heads);
  c.n_kv_heads = r.get("n_kv_heads", c.n_kv_heads);
  c.d_ff = r.get("d_ff", c.d_ff);
  c.max_len = r.get("max_len", c.max_len);
  c.positions = r.get("positions", c.positions);
  c.share_embeddings = r.get("share_embeddings", c.share_embeddings);
  c.dropout = r.get("dropout", c.dropout);
  c.attn_dropout = r.get("attn_dropout", c.attn_dropout);
  r.finish();
  return c;
}

namespace {

Seq2SeqConfig checked(const Seq2SeqConfig& c) {
  const std::pair<const char*, int64_t> sizes[] = {
      {"src_vocab", c.src_vocab}, {"tgt_vocab", c.tgt_vocab},       {"d_model", c.d_model},
      {"n_enc_layers", c.n_enc_layers}, {"n_dec_layers", c.n_dec_layers}, {"n_heads", c.n_heads},
      {"d_ff", c.d_ff},           {"max_len", c.max_len}};
  for (const auto& [key, value] : sizes)
    FOCUS_CHECK(value > 0, ValueError, "Seq2Seq: {} must be positive, got {}", key, value);
  FOCUS_CHECK(c.positions == "learned" || c.positions == "sinusoidal", ValueError,
              "Seq2Seq: positions must be \"learned\" or \"sinusoidal\", got \"{}\"", c.positions);
  FOCUS_CHECK(!c.share_embeddings || c.src_vocab == c.tgt_vocab, ValueError,
              "Seq2Seq: share_embeddings needs one vocabulary, got src_vocab {} and tgt_vocab {}",
              c.src_vocab, c.tgt_vocab);
  FOCUS_CHECK(c.dropout >= 0.0 && c.dropout < 1.0 && c.attn_dropout >= 0.0 && c.attn_dropout < 1.0,
              ValueError, "Seq2Seq: dropout {} and attn_dropout {} must be in [0, 1)", c.dropout,
              c.attn_dropout);
  return c;  // heads are checked by the layers
}

std::shared_ptr<Embedding> scaled_table(int64_t V, int64_t E, Rng& rng) {
  auto emb = std::make_shared<Embedding>(V, E, rng);
  Tensor w = emb->weight;
  // N(0, 1/E): times sqrt(E) in embed() the inputs have unit scale, and the tied output
  // projection starts with logits of unit scale.
  w.copy_(init::normal({V, E}, 1.0 / std::sqrt(double(E)), rng));
  return emb;
}

}  // namespace

void Seq2SeqDecodeState::reorder(const Tensor& index) {
  for (auto& c : self) c.reorder(index);
  for (auto& c : cross) c.reorder(index);
}

Seq2Seq::Seq2Seq(const Seq2SeqConfig& cfg, Rng& rng) : cfg_(checked(cfg)) {
  const int64_t E = cfg_.d_model;
  src_emb_ = register_module("src_emb", scaled_table(cfg_.src_vocab, E, rng));
  tgt_emb_ = cfg_.share_embeddings ? src_emb_
                                   : register_module("tgt_emb", scaled_table(cfg_.tgt_vocab, E, rng));
  tgt_emb_->mark_projection();  // the tied output projection
  if (cfg_.positions == "learned") {
    src_pos_ = register_module("src_pos",
                               std::make_shared<LearnedPositionalEncoding>(cfg_.max_len, E, rng));
    tgt_pos_ = register_module("tgt_pos",
                               std::make_shared<LearnedPositionalEncoding>(cfg_.max_len, E, rng));
  } else {
    sin_pos_ = std::make_shared<SinusoidalPositionalEncoding>(cfg_.max_len, E);
  }
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg_.dropout, rng));
  TransformerLayerOptions lo;  // encoder and decoder layers alike
  lo.d_model = E;
  lo.n_heads = cfg_.n_heads;
  lo.n_kv_heads = cfg_.n_kv_heads;
  lo.d_ff = cfg_.d_ff;
  lo.dropout = cfg_.dropout;
  lo.attn_dropout = cfg_.attn_dropout;
  for (int64_t i = 0; i < cfg_.n_enc_layers; ++i)
    enc_.push_back(register_module("encoder.layers." + std::to_string(i),
                                   std::make_shared<TransformerEncoderLayer>(lo, rng)));
  enc_norm_ = register_module("encoder.norm", std::make_shared<LayerNorm>(E));
  for (int64_t i = 0; i < cfg_.n_dec_layers; ++i)
    dec_.push_back(register_module("decoder.layers." + std::to_string(i),
                                   std::make_shared<TransformerDecoderLayer>(lo, rng)));
  dec_norm_ = register_module("decoder.norm", std::make_shared<LayerNorm>(E));
}

void Seq2Seq::check_tokens(const Tensor& t, const char* what, const char* where) const {
  FOCUS_CHECK(t.defined() && t.dim() == 2 && t.size(0) >= 1 && t.size(1) >= 1 &&
                  t.size(1) <= cfg_.max_len && t.dtype() == DType::I64,
              ShapeError, "Seq2Seq::{}: {} {} must be I64 (B, 1 <= L <= max_len {})", where, what,
              t.defined() ? to_string(t.shape()) : std::string("undefined"), cfg_.max_len);
}

Tensor Seq2Seq::positions_for(int64_t B, int64_t L, int64_t offset) const {
  std::vector<int64_t> pos(static_cast<size_t>(B * L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) pos[size_t(b * L + t)] = offset + t;
  return Tensor::from_vector(pos, {B, L});  // (B, L)
}

Tensor Seq2Seq::embed(const Embedding& table, const Tensor& tokens, const Tensor& positions,
                      bool target) {
  const Tensor pe =  // (Lmax, E)
      cfg_.positions == "learned" ? (target ? tgt_pos_ : src_pos_)->weight
                                  : sin_pos_->table(table.weight.dtype());
  const Tensor x = mul(embedding(table.weight, tokens), std::sqrt(double(cfg_.d_model)));
  return dropout_->forward(add(x, embedding(pe, positions)));  // (B, L, E)
}

Tensor Seq2Seq::encode(const Tensor& src, const Tensor& src_len,
                       std::vector<Tensor>* self_weights_out) {
  check_tokens(src, "src", "encode");
  const int64_t B = src.size(0), S = src.size(1);
  FOCUS_CHECK(src_len.defined() && src_len.dim() == 1 && src_len.size(0) == B &&
                  src_len.dtype() == DType::I64,
              ShapeError, "Seq2Seq::encode: src_len {} must be I64 ({})",
              src_len.defined() ? to_string(src_len.shape()) : std::string("undefined"), B);
  for (int64_t len : src_len.to_vector<int64_t>())
    FOCUS_CHECK(len >= 1 && len <= S, ValueError,
                "Seq2Seq::encode: a source length {} is outside [1, {}]", len, S);
  AttentionMask mask;
  mask.key_lengths = src_len;
  Tensor h = embed(*src_emb_, src, positions_for(B, S, 0), false);  // (B, S, E)
  if (self_weights_out) self_weights_out->assign(enc_.size(), Tensor());
  for (size_t i = 0; i < enc_.size(); ++i)
    h = enc_[i]->forward(h, mask, self_weights_out ? &(*self_weights_out)[i] : nullptr);
  return enc_norm_->forward(h);  // (B, S, E)
}

Tensor Seq2Seq::decode(const Tensor& tgt_in, const Tensor& memory, const Tensor& src_len,
                       std::vector<Tensor>* cross_weights_out,
                       std::vector<Tensor>* self_weights_out) {
  check_tokens(tgt_in, "tgt_in", "decode");
  const int64_t B = tgt_in.size(0), T = tgt_in.size(1);
  FOCUS_CHECK(memory.defined() && memory.dim() == 3 && memory.size(0) == B &&
                  memory.size(2) == cfg_.d_model,
              ShapeError, "Seq2Seq::decode: memory {} must be ({}, S, {})",
              memory.defined() ? to_string(memory.shape()) : std::string("undefined"), B,
              cfg_.d_model);
  AttentionMask causal, source;
  causal.causal = true;
  source.key_lengths = src_len;
  if (cross_weights_out) cross_weights_out->assign(dec_.size(), Tensor());
  if (self_weights_out) self_weights_out->assign(dec_.size(), Tensor());
  Tensor h = embed(*tgt_emb_, tgt_in, positions_for(B, T, 0), true);  // (B, T, E)
  for (size_t i = 0; i < dec_.size(); ++i)
    h = dec_[i]->forward(h, memory, causal, source,
                         cross_weights_out ? &(*cross_weights_out)[i] : nullptr,
                         self_weights_out ? &(*self_weights_out)[i] : nullptr);
  return tgt_emb_->project(dec_norm_->forward(h));  // (B, T, V)
}

Tensor Seq2Seq::loss(const Tensor& src, const Tensor& src_len, const Tensor& tgt_in,
                     const Tensor& tgt_out, double label_smoothing) {
  FOCUS_CHECK(tgt_out.defined() && tgt_in.defined() && tgt_out.shape() == tgt_in.shape(),
              ShapeError, "Seq2Seq::loss: tgt_out {} must have tgt_in's shape {}",
              tgt_out.defined() ? to_string(tgt_out.shape()) : std::string("undefined"),
              tgt_in.defined() ? to_string(tgt_in.shape()) : std::string("undefined"));
  const Tensor logits = forward(src, src_len, tgt_in);  // (B, T, V)
  const int64_t N = tgt_in.size(0) * tgt_in.size(1);
  return cross_entropy(focus::reshape(logits, {N, cfg_.tgt_vocab}), tgt_out.reshape({N}),
                       label_smoothing, /*ignore_index=*/0);
}

Seq2SeqDecodeState Seq2Seq::start_decoding(const Tensor& memory, const Tensor& src_len,
                                           int64_t capacity) {
  FOCUS_CHECK(memory.defined() && memory.dim() == 3 && memory.size(2) == cfg_.d_model, ShapeError,
              "Seq2Seq::start_decoding: memory {} must be (B, S, {})",
              memory.defined() ? to_string(memory.shape()) : std::string("undefined"),
              cfg_.d_model);
  NoGradGuard no_grad;
  Seq2SeqDecodeState st;
  AttentionMask source;
  source.key_lengths = src_len;
  for (const auto& layer : dec_) {
    st.self.push_back(layer->make_cache(memory.size(0), capacity));
    st.cross.emplace_back();
    layer->cache_memory(memory, st.cross.back(), source);
  }
  return st;
}

Tensor Seq2Seq::decode_step(const Tensor& tokens, Seq2SeqDecodeState& st) {
  check_tokens(tokens, "tokens", "decode_step");
  FOCUS_CHECK(tokens.size(0) == st.rows(), ShapeError,
              "Seq2Seq::decode_step: tokens {} for a state of {} rows", to_string(tokens.shape()),
              st.rows());
  const int64_t N = tokens.size(0), T = tokens.size(1), done = st.self[0].max_length();
  FOCUS_CHECK(done + T <= cfg_.max_len, ValueError,
              "Seq2Seq::decode_step: {} decoded + {} new tokens exceed max_len {}", done, T,
              cfg_.max_len);
  NoGradGuard no_grad;
  // Every row holds the same number of tokens (beam search appends one per row per step).
  Tensor h = embed(*tgt_emb_, tokens, positions_for(N, T, done), true);  // (N, T, E)
  for (size_t i = 0; i < dec_.size(); ++i) h = dec_[i]->forward_cached(h, st.self[i], st.cross[i]);
  return tgt_emb_->project(dec_norm_->forward(h));  // (N, T, V)
}

}  // namespace focus
