// Internal to the fused attention kernels (kernels/attention.hpp): block sizes, the workspace
// each thread carves its buffers from, and the per-ISA task functions that
// attention_{avx512,avx2,scalar}.cpp compile from attention_impl.hpp. The driver
// (attention.cpp) owns the threads; a task never starts threads of its own.
//   Tasks: forward, a run of query blocks of one (b, h); probs, one block of kBQ queries; backward, one chunk of
//   key blocks of one (b, hkv) for all G query heads that share it.
#pragma once
#include <algorithm>
#include <cstdint>

#include "focus/kernels/attention.hpp"

namespace focus::attn {

constexpr int64_t kBQ = 64;   // queries per block
constexpr int64_t kBK = 128;  // keys per block
constexpr int64_t kPad = 16;  // head dims and key blocks are padded to this (the widest vector)

inline int64_t padded(int64_t n) { return (n + kPad - 1) / kPad * kPad; }

// Elements of workspace a thread needs (same for every ISA).
// nblk: query blocks per forward task.
inline int64_t forward_workspace(int64_t D, int64_t Dv, int64_t nblk) {
  const int64_t Dp = padded(D), Dvp = padded(Dv), rows = nblk * kBQ;
  return rows * Dp + Dp * kBK + kBK * Dvp + kBQ * kBK + rows * Dvp + 2 * rows + 8 * kPad;
}
// The short-sequence forward (queries in the lanes of one vector): Lk keys at most.
// (a tail of few rows runs the blocked forward in the scores' space).
inline int64_t short_workspace(int64_t D, int64_t Dv, int64_t Lk) {
  return (D + Dv + 2) * kPad + std::max(Lk * kPad, forward_workspace(D, Dv, 1)) + 4 * kPad;
}
// Keys the short-sequence forward takes (its scores stay in L1 / L2: Lk x 64 bytes).
constexpr int64_t kShortKeys = 256;
inline int64_t backward_workspace(int64_t D, int64_t Dv, int64_t G, int64_t Lq) {
  const int64_t Dp = padded(D), Dvp = padded(Dv);
  return Dp * kBK + kBK * Dp + Dvp * kBK + kBQ * Dp + kBQ * Dvp + 3 * kBQ * kBK + kBK * Dp +
         kBK * Dvp + G * Lq * Dp + 16 * kPad;
}

// What a backward task reads besides the problem. dq_acc: the task's (G, Lq, Dp) accumulator of
// dS K (unscaled), which the driver adds into dq.
template <class T>
struct BackwardIO {
  const T* dout;
  AttnLayout dout_stride;
  const T* lse;    // (B, H, Lq)
  const T* delta;  // (B, H, Lq): rowsum(dout * o)
  T* dk;
  AttnLayout dk_stride;
  T* dv;
  AttnLayout dv_stride;
  T* dbias;  // (B, H, Lq, Lk) or null
};

template <class T>
struct TaskSet {
  // Task t < B * H * ceil(nqb / nblk), nqb = ceil(Lq / kBQ): (b, h, nblk query blocks).
  void (*forward)(const AttnProblem<T>& p, T* o, AttnLayout os, T* lse, int64_t t, int64_t nblk,
                  T* ws);
  // Task t < B * Hkv * chunks: (b, hkv, chunk of key blocks); leaves dS K in ws (returned).
  T* (*backward)(const AttnProblem<T>& p, const BackwardIO<T>& io, int64_t t, int64_t chunks,
                 T* ws);
  // Rows [i0, i0 + rows) (rows <= kBQ) of head h of batch b.
  void (*probs)(const AttnProblem<T>& p, const T* lse, int64_t b, int64_t h, int64_t i0,
                int64_t rows, T* out, int64_t ldo, T* ws);
  // Task t < B * H: every query of (b, h), queries in the lanes (no bias, window or dropout;
  // Lk <= kShortKeys); lse may be null.
  void (*forward_short)(const AttnProblem<T>& p, T* o, AttnLayout os, T* lse, int64_t t, T* ws);
};

TaskSet<float> tasks_avx512();
TaskSet<float> tasks_avx2();
template <class T>
TaskSet<T> tasks_scalar();

}  // namespace focus::attn
