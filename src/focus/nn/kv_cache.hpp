// Key/value caches for incremental (autoregressive) attention, inference only.
//   KvCache: one self-attention layer's keys and values, preallocated (B, Hkv, capacity, Dh) and
//     grown by doubling, with a length per sequence. append() writes the new tokens' K/V at each
//     sequence's own length and returns views of the filled part plus the mask that lets the new
//     queries see exactly their sequence's past and themselves (causal among the new ones), in
//     the form scaled_dot_product_attention takes (causal / key_lengths / bias).
//   CrossKvCache: a cross-attention layer's encoder K/V (B, Hkv, S, Dh), computed once per source
//     batch, with the source's padding (key_lengths or key_padding_mask).
// Both reorder over the batch (beam search: index_select of the sequences, repeats allowed, the
// batch may change size). No autograd: K/V given to append() must not carry a graph (run under
// NoGradGuard). Misuse throws ShapeError / DTypeError / ValueError / StateError with the shapes.
//   Letters: B sequences, Hkv K/V heads, Dh head dim, T new tokens, Lk keys seen by a step,
//   S source length.
#pragma once
#include <vector>

#include "focus/ops/attention.hpp"

namespace focus {

// What a step attends to: views of the cache and the mask for the step's T queries.
struct KvStep {
  Tensor k, v;         // (B, Hkv, Lk, Dh) views, Lk = max over b of old length + T
  AttentionMask mask;  // query i of sequence b sees keys j <= old_length[b] + i
};

class KvCache {
 public:
  // Empty cache; capacity (tokens per sequence) grows by doubling on demand. F32 or F64.
  KvCache(int64_t batch, int64_t kv_heads, int64_t head_dim, int64_t capacity = 64,
          DType dtype = DType::F32);

  // k, v (B, Hkv, T, Dh), T >= 1: written at positions [len[b], len[b] + T) of sequence b; then
  // len[b] += counts[b] (counts I64/I32 (B), each in [0, T]; undefined: T). Tokens past counts[b]
  // are padding (a ragged prompt prefilled in one call): they are attended by the step's padded
  // queries only and overwritten by the next append. Returns the step's views and mask.
  KvStep append(const Tensor& k, const Tensor& v, const Tensor& counts = Tensor());

  // The filled part: (B, Hkv, max_length(), Dh) views; positions j >= length(b) of sequence b
  // are not valid (mask them with lengths()).
  Tensor keys() const;
  Tensor values() const;
  Tensor lengths() const;  // I64 (B)
  int64_t length(int64_t b) const { return len_.at(b); }
  int64_t max_length() const;

  // Forgets every token (lengths 0), keeps the buffers.
  void reset();
  // Sequence i of the result is sequence index[i] of this cache (I64/I32 (B'), repeats allowed):
  // beam search's reordering of hypotheses, or expanding a prompt's cache to beams.
  void reorder(const Tensor& index);

  int64_t batch() const { return static_cast<int64_t>(len_.size()); }
  int64_t kv_heads() const { return k_.size(1); }
  int64_t head_dim() const { return k_.size(3); }
  int64_t capacity() const { return k_.size(2); }
  DType dtype() const { return k_.dtype(); }

 private:
  void reserve(int64_t tokens);  // capacity >= tokens, keeping the contents
  Tensor k_, v_;                 // (B, Hkv, capacity, Dh)
  Tensor spare_k_, spare_v_;     // reorder()'s destination, reused while shapes stay
  std::vector<int64_t> len_;     // (B)
};

class CrossKvCache {
 public:
  // Stores encoder k, v (B, Hkv, S, Dh) as given (views are kept, not copied) and the source's
  // padding: only key_lengths (B) and/or key_padding_mask (B, S) of `source_mask` may be set.
  void set(const Tensor& k, const Tensor& v, const AttentionMask& source_mask = {});
  bool filled() const { return k_.defined(); }
  const Tensor& keys() const;    // (B, Hkv, S, Dh)
  const Tensor& values() const;  // (B, Hkv, S, Dh)
  const AttentionMask& mask() const { return mask_; }
  int64_t batch() const { return filled() ? k_.size(0) : 0; }
  void reset();
  // As KvCache::reorder, over the K/V and the padding.
  void reorder(const Tensor& index);

 private:
  Tensor k_, v_;
  AttentionMask mask_;
};

}  // namespace focus
