// Fused (flash-style) attention kernels on raw pointers: the forward streams key blocks past a
// block of queries with an online softmax (running max and sum) and never stores the Lq x Lk
// matrix; it saves the row log-sum-exp (LSE), from which the backward recomputes the
// probabilities block by block and from which exact attention maps are recomputed on demand.
// Memory beyond the inputs and outputs is O(threads * block) in the forward and
// O(threads * G * Lq * D) in the backward (dQ accumulator per K/V head).
//   Letters: B batch, H query heads, Hkv K/V heads (G = H / Hkv query heads share one, query
//   head h uses K/V head h / G), Lq queries, Lk keys, D query/key head dim, Dv value head dim.
// Problems without bias, window or dropout whose keys are few (<= 256) and queries more than 4 run
// a short-sequence forward with the queries in the vector lanes (FOCUS_ATTENTION_SHORT=0 or
// set_attention_short_path(false) turns it off: the blocked forward then runs them).
// Paths: AVX-512 and AVX2 (chosen at run time from active_isa()) and a scalar path; F32 takes
// any of them, F64 the scalar one (for gradient checks). FOCUS_ATTENTION_ISA=scalar|avx2|avx512
// (or set_attention_isa) forces a path. The plain reference built from primitives lives in
// ops/attention.cpp (AttentionKernel::Reference), the oracle of the tests.
#pragma once
#include <cstdint>
#include <string>

namespace focus {

enum class AttentionIsa { Auto, Scalar, Avx2, Avx512 };
void set_attention_isa(AttentionIsa isa);  // Auto: the best the CPU has
AttentionIsa attention_isa();              // the path the next F32 call takes (never Auto)
std::string attention_isa_name(AttentionIsa isa);

// Element strides of a (B, heads, L, dim) operand whose last dim is contiguous.
struct AttnLayout {
  int64_t b = 0, h = 0, l = 0;
};

// One attention problem. Key j is visible to query i iff
//   i + shift - window_left <= j <= i + shift + window_right   (shift = Lk - Lq; -1 = unbounded)
// and j < key_lengths[b] and key_padding[b * Lk + j] == 0. Causal is window_right = 0. Scores are
// scale * q.k + bias; a query with no visible key gets a zero output and LSE = -inf.
template <class T>
struct AttnProblem {
  int64_t B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, D = 0, Dv = 0;
  const T* q = nullptr;  // (B, H, Lq, D)
  const T* k = nullptr;  // (B, Hkv, Lk, D)
  const T* v = nullptr;  // (B, Hkv, Lk, Dv)
  AttnLayout q_stride, k_stride, v_stride;
  double scale = 1.0;
  int64_t window_left = -1, window_right = -1;
  const int64_t* key_lengths = nullptr;  // (B), each in [0, Lk]
  const uint8_t* key_padding = nullptr;  // (B, Lk), nonzero = masked
  const T* bias = nullptr;               // broadcast to (B, H, Lq, Lk) through bias_stride
  int64_t bias_stride[4] = {0, 0, 0, 0};  // 0 on broadcast dims
  // Dropout on the probabilities (after the LSE, before P V): element (b, h, i, j) has index
  // ((b * H + h) * Lq + i) * Lk + j in the counter stream (seed, offset) of dropout_apply, i.e.
  // the mask ops/dropout would draw for the packed (B, H, Lq, Lk) probabilities.
  double dropout_p = 0.0;
  uint64_t seed = 0, offset = 0;
};

void set_attention_short_path(bool on);  // default on (off with FOCUS_ATTENTION_SHORT=0)
bool attention_short_path();

// Whether attention_forward runs p on the short-sequence forward (the switch included).
template <class T>
bool attention_runs_short(const AttnProblem<T>& p);

// o (B, H, Lq, Dv) through o_stride; lse (B, H, Lq) packed, or null when not wanted (inference:
// no backward will read it). Overwrites both.
template <class T>
void attention_forward(const AttnProblem<T>& p, T* o, AttnLayout o_stride, T* lse);

// Given the forward's o and lse and the output gradient dout, ACCUMULATES dq (layout of q:
// dq_stride), dk, dv (dk_stride, dv_stride) and, if dbias is not null, writes dS into dbias
// (B, H, Lq, Lk) packed (the caller reduces it to the bias shape).
template <class T>
void attention_backward(const AttnProblem<T>& p, const T* o, AttnLayout o_stride, const T* dout,
                        AttnLayout dout_stride, const T* lse, T* dq, AttnLayout dq_stride, T* dk,
                        AttnLayout dk_stride, T* dv, AttnLayout dv_stride, T* dbias);

// Exact probabilities (before dropout) of query rows [i0, i0 + rows) of head h of batch b,
// recomputed from q, k and the forward's lse: out (rows, Lk) with row stride ldo.
template <class T>
void attention_probs(const AttnProblem<T>& p, const T* lse, int64_t b, int64_t h, int64_t i0,
                     int64_t rows, T* out, int64_t ldo);

}  // namespace focus
