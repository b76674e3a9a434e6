// seq2seq: an encoder-decoder Transformer (Vaswani et al. 2017, pre-norm) for translation-like
// tasks (grapheme-to-phoneme, any source<TAB>target text).
//   src (B, S) I64, right-padded with 0, src_len (B) -> embedding * sqrt(E) + positions -> dropout
//   -> n_enc pre-norm TransformerEncoderLayer (key_lengths = src_len) -> encoder.norm = memory
//   tgt_in (B, T) I64 = <s> y, right-padded -> embedding * sqrt(E) + positions -> dropout
//   -> n_dec TransformerDecoderLayer (causal self, cross to memory) -> decoder.norm
//   -> logits (B, T, V) = h @ tgt_emb.weight^T (output projection tied to the target embedding).
// The same computation as torch.nn.Transformer(norm_first=True, activation="gelu",
// batch_first=True) between the embeddings and the tied projection (tests/golden fixtures).
// Decoding (inference) runs one KvCache per decoder layer and the encoder K/V projected once per
// layer (CrossKvCache); see models/seq2seq_search.hpp for greedy and beam search.
// Letters: B batch, S source length, T target length, E = d_model, V target vocabulary.
// Parameter names: src_emb.weight (Vs, E); tgt_emb.weight (V, E) unless shared (then src_emb is
// both); src_pos.weight / tgt_pos.weight (learned positions only); encoder.layers.{i}.*,
// encoder.norm.*, decoder.layers.{i}.* (norm1 self_attn norm2 cross_attn norm3 linear1 linear2),
// decoder.norm.*.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/nn/kv_cache.hpp"
#include "focus/nn/module.hpp"
#include "focus/text/vocab.hpp"

namespace focus {

class Dropout;
class Embedding;
class LayerNorm;
class LearnedPositionalEncoding;
class Rng;
class SinusoidalPositionalEncoding;
class TransformerDecoderLayer;
class TransformerEncoderLayer;

struct Seq2SeqConfig {
  int64_t src_vocab = 0;
  int64_t tgt_vocab = 0;
  int64_t d_model = 256;
  int64_t n_enc_layers = 3;
  int64_t n_dec_layers = 3;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 0;  // 0: n_heads
  int64_t d_ff = 1024;
  int64_t max_len = 64;                  // longest source and longest target (with <s> / </s>)
  std::string positions = "sinusoidal";  // or "learned"
  bool share_embeddings = false;         // one table for source and target (same vocabulary)
  double dropout = 0.1;                  // embeddings, residual branches, feed-forward
  double attn_dropout = 0.0;             // on the attention probabilities
};
// JSON <-> config; from_json rejects unknown keys and bad values (ValueError naming them).
nlohmann::json to_json(const Seq2SeqConfig& c);
Seq2SeqConfig seq2seq_config_from_json(const nlohmann::json& j);

// Incremental decoding state of a batch of N rows (sentences x beams).
struct Seq2SeqDecodeState {
  std::vector<KvCache> self;        // one per decoder layer
  std::vector<CrossKvCache> cross;  // one per decoder layer
  int64_t rows() const { return self.empty() ? 0 : self[0].batch(); }
  // Keeps / repeats rows: index I64 (N') into the current rows (beam search).
  void reorder(const Tensor& index);
};

class Seq2Seq : public Module {
 public:
  // Reserved target ids: padding, start, end (the vocabulary's).
  static constexpr int64_t kPad = Vocab::kPad, kBos = Vocab::kBos, kEos = Vocab::kEos;

  Seq2Seq(const Seq2SeqConfig& cfg, Rng& rng);  // ValueError on a bad config
  const Seq2SeqConfig& config() const { return cfg_; }

  // src (B, S), src_len (B) in [1, S] -> memory (B, S, E); rows past src_len are not meaningful.
  // self_weights_out, if given, receives one (B, H, S, S) self-attention map per encoder layer.
  Tensor encode(const Tensor& src, const Tensor& src_len,
                std::vector<Tensor>* self_weights_out = nullptr);
  // tgt_in (B, T) -> logits (B, T, V), teacher forcing. cross_weights_out, if given, receives
  // one (B, H, T, S) cross-attention map per decoder layer; self_weights_out one (B, H, T, T)
  // causal self-attention map per decoder layer.
  Tensor decode(const Tensor& tgt_in, const Tensor& memory, const Tensor& src_len,
                std::vector<Tensor>* cross_weights_out = nullptr,
                std::vector<Tensor>* self_weights_out = nullptr);
  Tensor forward(const Tensor& src, const Tensor& src_len, const Tensor& tgt_in) {
    return decode(tgt_in, encode(src, src_len), src_len);
  }
  // Mean label-smoothed cross-entropy over the non-padding target tokens (tgt_out != 0).
  Tensor loss(const Tensor& src, const Tensor& src_len, const Tensor& tgt_in,
              const Tensor& tgt_out, double label_smoothing = 0.0);

  // Inference (eval mode): caches for memory's rows (the cross K/V projected once).
  Seq2SeqDecodeState start_decoding(const Tensor& memory, const Tensor& src_len,
                                    int64_t capacity = 16);
  // The next T target tokens (N, T) of each row after what `state` holds -> logits (N, T, V).
  Tensor decode_step(const Tensor& tokens, Seq2SeqDecodeState& state);

 private:
  Tensor embed(const Embedding& table, const Tensor& tokens, const Tensor& positions,
               bool target);  // (B, L) each -> (B, L, E), scaled, with positions, dropout
  Tensor positions_for(int64_t B, int64_t L, int64_t offset) const;  // (B, L) I64
  void check_tokens(const Tensor& t, const char* what, const char* where) const;

  Seq2SeqConfig cfg_;
  std::shared_ptr<Embedding> src_emb_, tgt_emb_;  // tgt_emb_ == src_emb_ when shared
  std::shared_ptr<LearnedPositionalEncoding> src_pos_, tgt_pos_;  // learned positions
  std::shared_ptr<SinusoidalPositionalEncoding> sin_pos_;          // sinusoidal positions
  std::shared_ptr<Dropout> dropout_;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> enc_;
  std::vector<std::shared_ptr<TransformerDecoderLayer>> dec_;
  std::shared_ptr<LayerNorm> enc_norm_, dec_norm_;
};

}  // namespace focus
