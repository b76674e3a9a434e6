// Scaled-dot-product attention, two kernels behind one entry point:
//   - Fused (the default): the flash-style kernels of kernels/attention.hpp, forward and backward,
//     memory linear in L; the probabilities are never stored, but the forward's row log-sum-exp
//     can be kept (AttentionRecord) to recompute exact maps on demand.
//   - Reference: built from differentiable primitives (matmul, add, softmax, dropout, mul); it
//     materialises the (B, H, Lq, Lk) scores. The oracle of the tests, and the path whose
//     returned weights stay attached to the graph (gradients with respect to the weights).
// No silent fallback: the fused kernel serves every request, the kernel a call runs is the one
// asked for (AttentionOptions::kernel, else the global switch: set_attention_kernel or
// FOCUS_ATTENTION=fused|reference), last_attention_kernel() says which ran, and
// FOCUS_ATTENTION_LOG=1 logs every call (kernel, ISA, shapes, masks) to stderr.
//   Letters: B batch, H query heads, Hkv key/value heads (H % Hkv == 0; query head h uses K/V
//   head h / (H / Hkv), as torch's repeat_interleave), Lq queries, Lk keys, D head dim, Dv value
//   head dim (usually D). F32 and F64.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

class Rng;

// Which scores take part. Masked scores are set to -inf before the softmax; a query row with no
// key left gives zero probabilities (and a zero output), never NaN.
struct AttentionMask {
  // Query i sees keys j <= i + (Lk - Lq) (the last query sees every key).
  bool causal = false;
  // I64 or I32 (B): keys j >= key_lengths[b] are masked; each length in [0, Lk].
  Tensor key_lengths;
  // (B, Lk), any dtype: nonzero marks a padding key (masked), as torch.nn.MultiheadAttention's
  // key_padding_mask.
  Tensor key_padding_mask;
  // Additive, broadcastable to (B, H, Lq, Lk), same dtype as q; differentiable. Keep it finite:
  // -inf entries are allowed, but a row of only -inf bias is not caught (it gives NaN as in torch
  // in the reference, a zero row in the fused kernel).
  Tensor bias;
  // Sliding-window (local) attention: query i sees keys j with
  // i + s - window_left <= j <= i + s + window_right, s = Lk - Lq; -1 = unbounded on that side
  // (causal is window_right = 0; a causal window of W keys is window_left = W - 1).
  int64_t window_left = -1, window_right = -1;
};

enum class AttentionKernel { Auto, Fused, Reference };
void set_attention_kernel(AttentionKernel k);  // the global switch; Auto = Fused
AttentionKernel attention_kernel();            // the switch resolved (Fused or Reference)
std::string attention_kernel_name(AttentionKernel k);
AttentionKernel last_attention_kernel();  // what this thread's last call ran (Auto: none yet)

// What a fused forward keeps, when asked, for attention maps on demand: q, k and the row
// log-sum-exp (detached; O(L) memory beyond the inputs), the mask and the scale.
struct AttentionRecord {
  Tensor q;    // (B, H, Lq, D)
  Tensor k;    // (B, Hkv, Lk, D)
  Tensor lse;  // (B, H, Lq), natural log; -inf on rows with no visible key
  AttentionMask mask;
  double scale = 1.0;
};

// Per-head statistics of the probabilities (before dropout).
struct AttentionStats {
  Tensor received;     // (B, H, Lk): attention each key receives, summed over the queries
  Tensor entropy;      // (B, H, Lq): row entropy in nats
  Tensor topk_index;   // (B, H, Lq, k) I64: the k most attended keys of each query, by weight
  Tensor topk_weight;  // (B, H, Lq, k): their weights
};

struct AttentionOptions : AttentionMask {
  std::optional<double> scale;  // default 1 / sqrt(D)
  double dropout_p = 0.0;       // on the probabilities, only when training
  bool training = false;
  Rng* rng = nullptr;  // required when training with dropout_p > 0
  AttentionKernel kernel = AttentionKernel::Auto;  // Auto: the global switch
  AttentionRecord* record = nullptr;  // fused only: filled for attention_probabilities
  AttentionStats* stats = nullptr;    // fused only: filled after the forward (one more Q K^T pass)
  int64_t stats_top_k = 5;
};

// q (B, H, Lq, D), k (B, Hkv, Lk, D), v (B, Hkv, Lk, Dv) -> (B, H, Lq, Dv); q, k, v may be
// strided views (the fused kernel reads any layout whose last dim is contiguous, and returns a
// view of a (B, Lq, H, Dv) buffer, so merging the heads costs no copy). If weights_out is given
// it receives the (B, H, Lq, Lk) probabilities after masking and before dropout: attached to the
// graph with the reference kernel, exact but detached (recomputed from the LSE) with the fused
// one. Throws ShapeError / DTypeError / ValueError on bad inputs.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt = {},
                                    Tensor* weights_out = nullptr);

// Exact probabilities from a record, recomputed block by block from q, k and the LSE:
// heads `heads` (empty: all) and query rows [row_begin, row_end) (-1: Lq) ->
// (B, heads, rows, Lk). Equal to the reference kernel's weights to rounding.
Tensor attention_probabilities(const AttentionRecord& r, int64_t row_begin = 0,
                               int64_t row_end = -1, const std::vector<int64_t>& heads = {});
// Streams every (b, h) block of up to `block_rows` query rows to fn(b, h, i0, probs) with probs
// (rows, Lk), so a consumer can read all maps in O(block_rows * Lk) memory.
void for_each_attention_block(
    const AttentionRecord& r, int64_t block_rows,
    const std::function<void(int64_t b, int64_t h, int64_t i0, const Tensor& probs)>& fn);
AttentionStats attention_statistics(const AttentionRecord& r, int64_t top_k);

}  // namespace focus
