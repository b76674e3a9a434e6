// decoder_lm: a small decoder-only (GPT-style) language model and autoregressive generation.
//   tokens (B, L) I64 -> token embedding (V, E) + positions (learned (Lmax, E) or sinusoidal)
//   -> n_layers pre-norm TransformerEncoderLayer with a causal mask -> final LayerNorm
//   -> logits (B, L, V) = h @ tok_emb.weight^T (output projection tied to the embedding, no bias).
// Generation (greedy or sampling, inference only, no dropout) decodes over one KvCache per layer:
// the prompt is prefilled in one call, then one token per step; generate_uncached recomputes the
// whole sequence every step instead (the reference and the benchmark's baseline). Prompts may
// have different lengths (prompt_lengths; tokens past a prompt's length are ignored).
// Letters: B batch, L / P / T sequence, prompt and step lengths, E = d_model, V vocabulary.
// Parameter names: tok_emb.weight, pos_emb.weight (learned positions only), layers.{i}.*, norm.*.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/nn/kv_cache.hpp"
#include "focus/nn/module.hpp"

namespace focus {

class Embedding;
class LayerNorm;
class LearnedPositionalEncoding;
class Rng;
class SinusoidalPositionalEncoding;
class TransformerEncoderLayer;

struct DecoderLMConfig {
  int64_t vocab = 8000;
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 0;  // 0: n_heads
  int64_t d_ff = 1024;
  int64_t max_len = 512;               // longest sequence (prompt + generated)
  std::string positions = "learned";  // or "sinusoidal"
  double dropout = 0.0;               // residual branches and feed-forward, in training
};

struct GenerateOptions {
  Tensor prompt_lengths;     // I64/I32 (B), each in [1, P]; undefined: every prompt has P tokens
  bool greedy = true;        // argmax; else sample from softmax(logits / temperature)
  double temperature = 1.0;  // > 0, sampling only
  Rng* rng = nullptr;        // required for sampling
};

class DecoderLM : public Module {
 public:
  DecoderLM(const DecoderLMConfig& cfg, Rng& rng);  // ValueError on a bad config
  // tokens (B, L) I64 -> logits (B, L, V), causal.
  Tensor forward(const Tensor& tokens);

  // One KvCache per layer, sized for `capacity` tokens per sequence (they grow if needed).
  std::vector<KvCache> make_cache(int64_t batch, int64_t capacity) const;
  // The next T tokens (B, T) of each sequence, after what `cache` holds -> logits (B, T, V).
  // counts (B): valid new tokens per sequence (KvCache::append), default T.
  Tensor forward_cached(const Tensor& tokens, std::vector<KvCache>& cache,
                        const Tensor& counts = Tensor());

  // prompt (B, P) I64 -> the n_new generated tokens (B, n_new) I64. Runs under NoGradGuard;
  // needs eval() when dropout > 0. P + n_new <= max_len.
  Tensor generate(const Tensor& prompt, int64_t n_new, const GenerateOptions& opt = {});
  Tensor generate_uncached(const Tensor& prompt, int64_t n_new, const GenerateOptions& opt = {});

  const DecoderLMConfig& config() const { return cfg_; }

 private:
  Tensor hidden(const Tensor& tokens);  // (B, L) -> final-norm output (B, L, E), causal
  Tensor hidden_cached(const Tensor& tokens, std::vector<KvCache>& cache, const Tensor& counts);
  Tensor embed(const Tensor& tokens, const Tensor& positions);  // (B, T) each -> (B, T, E)
  Tensor logits(const Tensor& h) const;                         // (..., E) -> (..., V)
  // Checks, and the prompt lengths as a vector.
  std::vector<int64_t> check_generate(const Tensor& prompt, int64_t n_new,
                                      const GenerateOptions& opt, const char* who) const;

  DecoderLMConfig cfg_;
  std::shared_ptr<Embedding> tok_emb_;
  std::shared_ptr<LearnedPositionalEncoding> pos_learned_;      // positions "learned"
  std::shared_ptr<SinusoidalPositionalEncoding> pos_sin_;       // positions "sinusoidal"
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers_;
  std::shared_ptr<LayerNorm> norm_;
};

}  // namespace focus
