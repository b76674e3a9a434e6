// decoder_lm model and generation (see decoder_lm.hpp).
#include "focus/models/decoder_lm.hpp"

#include <algorithm>
#include <cmath>

#include "focus/autograd/node.hpp"
#include "focus/nn/init.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

DecoderLMConfig checked(const DecoderLMConfig& c) {
  const std::pair<const char*, int64_t> sizes[] = {{"vocab", c.vocab},     {"d_model", c.d_model},
                                                   {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                                                   {"d_ff", c.d_ff},       {"max_len", c.max_len}};
  for (const auto& [key, value] : sizes)
    FOCUS_CHECK(value > 0, ValueError, "DecoderLM: {} must be positive, got {}", key, value);
  FOCUS_CHECK(c.positions == "learned" || c.positions == "sinusoidal", ValueError,
              "DecoderLM: positions must be \"learned\" or \"sinusoidal\", got \"{}\"",
              c.positions);
  return c;  // heads / dropout are checked by the layers
}

// Row len[b] - 1 of each sequence: h (B, L, E) -> (B, E).
Tensor last_rows(const Tensor& h, const std::vector<int64_t>& len) {
  const int64_t B = h.size(0);
  bool uniform = true;
  for (int64_t b = 0; b < B; ++b) uniform &= len[b] == len[0];
  if (uniform) return h.select(1, len[0] - 1);
  Tensor out = Tensor::empty({B, h.size(2)}, h.dtype());  // (B, E)
  for (int64_t b = 0; b < B; ++b) out.select(0, b).copy_(h.select(0, b).select(0, len[b] - 1));
  return out;
}

// The next token of each sequence from logits (B, V): argmax (first on ties), or a draw from
// softmax(logits / temperature).
std::vector<int64_t> pick(const Tensor& logits, const GenerateOptions& opt) {
  const Tensor l = logits.contiguous();
  const int64_t B = l.size(0), V = l.size(1);
  std::vector<int64_t> next(B);
  dispatch_float(l.dtype(), "DecoderLM pick", [&]<class T>() {
    const T* p = l.data<T>();
    for (int64_t b = 0; b < B; ++b) {
      const T* row = p + b * V;
      int64_t best = 0;
      for (int64_t j = 1; j < V; ++j)
        if (row[j] > row[best]) best = j;
      next[b] = best;
      if (opt.greedy) continue;
      // Inverse-CDF draw; weights relative to the maximum keep exp() finite.
      std::vector<double> w(V);
      double total = 0.0;
      for (int64_t j = 0; j < V; ++j)
        total += w[j] = std::exp((double(row[j]) - double(row[best])) / opt.temperature);
      double u = opt.rng->uniform() * total;
      for (int64_t j = 0; j < V; ++j) {
        u -= w[j];
        if (u < 0.0) {
          next[b] = j;
          break;
        }
      }
    }
  });
  return next;
}

}  // namespace

DecoderLM::DecoderLM(const DecoderLMConfig& cfg, Rng& rng) : cfg_(checked(cfg)) {
  const int64_t E = cfg_.d_model;
  tok_emb_ = register_module("tok_emb", std::make_shared<Embedding>(cfg_.vocab, E, rng));
  tok_emb_->mark_projection();  // the tied output projection
  Tensor w = tok_emb_->weight;
  w.copy_(init::normal({cfg_.vocab, E}, 0.02, rng));  // GPT-style: the table is also the head
  if (cfg_.positions == "learned")
    pos_learned_ = register_module(
        "pos_emb", std::make_shared<LearnedPositionalEncoding>(cfg_.max_len, E, rng));
  else
    pos_sin_ = std::make_shared<SinusoidalPositionalEncoding>(cfg_.max_len, E);
  TransformerEncoderLayerOptions lo;
  lo.d_model = E;
  lo.n_heads = cfg_.n_heads;
  lo.n_kv_heads = cfg_.n_kv_heads;
  lo.d_ff = cfg_.d_ff;
  lo.dropout = cfg_.dropout;
  for (int64_t i = 0; i < cfg_.n_layers; ++i)
    layers_.push_back(register_module("layers." + std::to_string(i),
                                      std::make_shared<TransformerEncoderLayer>(lo, rng)));
  norm_ = register_module("norm", std::make_shared<LayerNorm>(E));
}

Tensor DecoderLM::logits(const Tensor& h) const { return tok_emb_->project(h); }

Tensor DecoderLM::embed(const Tensor& tokens, const Tensor& positions) {
  const Tensor table =  // (Lmax, E)
      pos_learned_ ? pos_learned_->weight : pos_sin_->table(tok_emb_->weight.dtype());
  return add(tok_emb_->forward(tokens), embedding(table, positions));  // (B, T, E)
}

Tensor DecoderLM::forward(const Tensor& tokens) { return logits(hidden(tokens)); }

Tensor DecoderLM::forward_cached(const Tensor& tokens, std::vector<KvCache>& cache,
                                 const Tensor& counts) {
  return logits(hidden_cached(tokens, cache, counts));
}

Tensor DecoderLM::hidden(const Tensor& tokens) {
  FOCUS_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(1) >= 1 &&
                  tokens.size(1) <= cfg_.max_len,
              ShapeError, "DecoderLM::forward: tokens {} must be (B, 1 <= L <= {})",
              tokens.defined() ? to_string(tokens.shape()) : std::string("undefined"),
              cfg_.max_len);
  const Tensor x = tok_emb_->forward(tokens);  // (B, L, E)
  Tensor h = pos_learned_ ? pos_learned_->forward(x) : pos_sin_->forward(x);
  AttentionMask causal;
  causal.causal = true;
  for (const auto& layer : layers_) h = layer->forward(h, causal);
  return norm_->forward(h);  // (B, L, E)
}

std::vector<KvCache> DecoderLM::make_cache(int64_t batch, int64_t capacity) const {
  std::vector<KvCache> cache;
  for (const auto& layer : layers_) cache.push_back(layer->make_cache(batch, capacity));
  return cache;
}

Tensor DecoderLM::hidden_cached(const Tensor& tokens, std::vector<KvCache>& cache,
                                const Tensor& counts) {
  FOCUS_CHECK(cache.size() == layers_.size(), ValueError,
              "DecoderLM::forward_cached: {} caches for {} layers (use make_cache)", cache.size(),
              layers_.size());
  FOCUS_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(0) == cache[0].batch() &&
                  tokens.size(1) >= 1,
              ShapeError, "DecoderLM::forward_cached: tokens {} must be (B, T) with B = {}",
              tokens.defined() ? to_string(tokens.shape()) : std::string("undefined"),
              cache[0].batch());
  const int64_t B = tokens.size(0), T = tokens.size(1);
  std::vector<int64_t> pos(B * T);  // position of token t of sequence b: its cached length + t
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) pos[b * T + t] = cache[0].length(b) + t;
  FOCUS_CHECK(cache[0].max_length() + T <= cfg_.max_len, ValueError,
              "DecoderLM::forward_cached: {} cached + {} new tokens exceed max_len {}",
              cache[0].max_length(), T, cfg_.max_len);
  Tensor h = embed(tokens, Tensor::from_vector(pos, {B, T}));  // (B, T, E)
  for (size_t i = 0; i < layers_.size(); ++i) h = layers_[i]->forward_cached(h, cache[i], counts);
  return norm_->forward(h);  // (B, T, E)
}

std::vector<int64_t> DecoderLM::check_generate(const Tensor& prompt, int64_t n_new,
                                               const GenerateOptions& opt, const char* who) const {
  FOCUS_CHECK(prompt.defined() && prompt.dim() == 2 && prompt.size(0) >= 1 && prompt.size(1) >= 1,
              ShapeError, "DecoderLM::{}: prompt {} must be (B, P), P >= 1", who,
              prompt.defined() ? to_string(prompt.shape()) : std::string("undefined"));
  const int64_t B = prompt.size(0), P = prompt.size(1);
  FOCUS_CHECK(n_new >= 1 && P + n_new <= cfg_.max_len, ValueError,
              "DecoderLM::{}: prompt of {} + {} new tokens must fit max_len {} (n_new >= 1)", who,
              P, n_new, cfg_.max_len);
  FOCUS_CHECK(opt.greedy || (opt.rng != nullptr && opt.temperature > 0.0), ValueError,
              "DecoderLM::{}: sampling needs an Rng and temperature > 0 (got {})", who,
              opt.temperature);
  std::vector<int64_t> len(B, P);
  if (opt.prompt_lengths.defined()) {
    FOCUS_CHECK(opt.prompt_lengths.dim() == 1 && opt.prompt_lengths.size(0) == B &&
                    (opt.prompt_lengths.dtype() == DType::I64 ||
                     opt.prompt_lengths.dtype() == DType::I32),
                ShapeError, "DecoderLM::{}: prompt_lengths {} ({}) must be I64 or I32 ({})", who,
                to_string(opt.prompt_lengths.shape()), dtype_name(opt.prompt_lengths.dtype()), B);
    len = opt.prompt_lengths.to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      FOCUS_CHECK(len[b] >= 1 && len[b] <= P, ValueError,
                  "DecoderLM::{}: prompt_lengths[{}] = {} is outside [1, {}]", who, b, len[b], P);
  }
  FOCUS_CHECK(!(is_training() && cfg_.dropout > 0.0), StateError,
              "DecoderLM::{}: generation applies no dropout; call eval() (dropout {})", who,
              cfg_.dropout);
  return len;
}

Tensor DecoderLM::generate(const Tensor& prompt, int64_t n_new, const GenerateOptions& opt) {
  const std::vector<int64_t> len = check_generate(prompt, n_new, opt, "generate");
  NoGradGuard no_grad;
  const int64_t B = prompt.size(0), P = prompt.size(1);
  std::vector<KvCache> cache = make_cache(B, P + n_new);
  // Prefill: the whole (padded) prompt in one call; each sequence keeps len[b] of its tokens.
  const Tensor h = hidden_cached(prompt, cache, Tensor::from_vector(len, {B}));
  std::vector<int64_t> next = pick(logits(last_rows(h, len)), opt);  // from (B, V) logits
  std::vector<int64_t> out(B * n_new);
  for (int64_t s = 0;; ++s) {
    for (int64_t b = 0; b < B; ++b) out[b * n_new + s] = next[b];
    if (s + 1 == n_new) break;
    const Tensor step = hidden_cached(Tensor::from_vector(next, {B, 1}), cache, Tensor());
    next = pick(logits(step.select(1, 0)), opt);  // step (B, 1, E) -> logits (B, V)
  }
  return Tensor::from_vector(out, {B, n_new});
}

Tensor DecoderLM::generate_uncached(const Tensor& prompt, int64_t n_new,
                                    const GenerateOptions& opt) {
  const std::vector<int64_t> plen = check_generate(prompt, n_new, opt, "generate_uncached");
  std::vector<int64_t> len = plen;  // current lengths
  NoGradGuard no_grad;
  const int64_t B = prompt.size(0), P = prompt.size(1);
  // Right-padded sequences (B, Lmax): padding after a sequence's end is invisible to its
  // positions under the causal mask, so every step recomputes all sequences in one batch.
  const std::vector<int64_t> p = prompt.to_vector<int64_t>();
  std::vector<int64_t> out(B * n_new);
  for (int64_t s = 0; s < n_new; ++s) {
    const int64_t L = *std::max_element(len.begin(), len.end());
    std::vector<int64_t> tok(B * L, 0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < len[b]; ++t)
        tok[b * L + t] = t < plen[b] ? p[b * P + t] : out[b * n_new + t - plen[b]];
    const Tensor h = hidden(Tensor::from_vector(tok, {B, L}));  // (B, L, E)
    const std::vector<int64_t> next = pick(logits(last_rows(h, len)), opt);
    for (int64_t b = 0; b < B; ++b) out[b * n_new + s] = next[b];
    for (int64_t& l : len) ++l;
  }
  return Tensor::from_vector(out, {B, n_new});
}

}  // namespace focus
