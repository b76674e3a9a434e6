// The block kernels of the fused attention, templated on element type T and vector width W (1 =
// scalar). Included once by each of attention_avx512.cpp and attention_avx2.cpp (after a
// `#pragma GCC target`) and attention_scalar.cpp. Everything is in an anonymous namespace, so
// each inclusion is a private copy compiled for its ISA: no AVX-512 code can be picked by the
// linker for an AVX2 caller.
//   Blocks: S = Qs Kt (m x np) for m <= kBQ queries and n <= kBK keys (np = n padded to kPad,
//   padded keys masked), Qs = scale * Q. Head dims are padded with zeros to Dp / Dvp so every
//   vector load is whole; masked scores are -inf and exp(-inf) = 0 exactly.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "focus/kernels/attention_tasks.hpp"
#include "focus/kernels/dropout.hpp"
#include "focus/kernels/simd.hpp"
#include "focus/kernels/unary.hpp"

namespace focus::attn {
namespace {

template <class T, int W>
struct Kern : simd::Simd<T, W> {
  using Simd = simd::Simd<T, W>;
  using V = typename Simd::V;
  using Simd::bcast;
  using Simd::hmax;
  using Simd::hsum;
  using Simd::load;
  using Simd::store;
  using Simd::vmax;
  static constexpr T kNegInf = -std::numeric_limits<T>::infinity();

  // ---- block GEMM -----------------------------------------------------------------------------
  // C (M x N) = or += A (M x Kd) B (Kd x N): A(r, k) = A[r * ars + k * aks], B row-major with row
  // stride ldb, N a multiple of W, C row-major with row stride ldc.
  template <int MR, int NV>
  static void tile(int64_t Kd, const T* A, int64_t ars, int64_t aks, const T* B, int64_t ldb,
                   T* C, int64_t ldc, bool acc) {
    V c[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[r][v] = acc ? load(C + r * ldc + v * W) : V{};
    for (int64_t k = 0; k < Kd; ++k) {
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = load(B + k * ldb + v * W);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const V a = bcast(A[r * ars + k * aks]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) c[r][v] += a * bv[v];
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) store(C + r * ldc + v * W, c[r][v]);
  }

  // Register tile: kMR rows x kNV vectors (AVX-512: 6 x 64 floats, 24 accumulators).
  static constexpr int kMR = W == 1 ? 4 : 6;
  static constexpr int kNV = W == 16 ? 4 : (W == 1 ? 4 : 2);

  template <int MR>
  static void tile_nv(int nv, int64_t Kd, const T* A, int64_t ars, int64_t aks, const T* B,
                      int64_t ldb, T* C, int64_t ldc, bool acc) {
    switch (nv) {
      case 1: return tile<MR, 1>(Kd, A, ars, aks, B, ldb, C, ldc, acc);
      case 2: return tile<MR, (kNV >= 2 ? 2 : 1)>(Kd, A, ars, aks, B, ldb, C, ldc, acc);
      case 3: return tile<MR, (kNV >= 3 ? 3 : 1)>(Kd, A, ars, aks, B, ldb, C, ldc, acc);
      default: return tile<MR, kNV>(Kd, A, ars, aks, B, ldb, C, ldc, acc);
    }
  }

  // Rows below kMR: one tile of `rows` rows.
  static void tile_rows(int64_t rows, int nv, int64_t Kd, const T* A, int64_t ars, int64_t aks,
                        const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
    switch (rows) {
      case 1: return tile_nv<1>(nv, Kd, A, ars, aks, B, ldb, C, ldc, acc);
      case 2: return tile_nv<2>(nv, Kd, A, ars, aks, B, ldb, C, ldc, acc);
      case 3: return tile_nv<3>(nv, Kd, A, ars, aks, B, ldb, C, ldc, acc);
      case 4: return tile_nv<(kMR > 4 ? 4 : 1)>(nv, Kd, A, ars, aks, B, ldb, C, ldc, acc);
      default: return tile_nv<(kMR > 5 ? 5 : 1)>(nv, Kd, A, ars, aks, B, ldb, C, ldc, acc);
    }
  }

  static void gemm(int64_t M, int64_t N, int64_t Kd, const T* A, int64_t ars, int64_t aks,
                   const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
    for (int64_t j = 0; j < N; j += kNV * W) {
      const int nv = static_cast<int>(std::min<int64_t>(kNV, (N - j) / W));
      int64_t i = 0;
      for (; i + kMR <= M; i += kMR)
        tile_nv<kMR>(nv, Kd, A + i * ars, ars, aks, B + j, ldb, C + i * ldc + j, ldc, acc);
      if (i < M)
        tile_rows(M - i, nv, Kd, A + i * ars, ars, aks, B + j, ldb, C + i * ldc + j, ldc, acc);
    }
  }

  // ---- masks ----------------------------------------------------------------------------------
  // Visible keys [lo, hi) of query i (hi <= lo: none), len = the batch's key length.
  static void visible(const AttnProblem<T>& p, int64_t len, int64_t i, int64_t& lo, int64_t& hi) {
    const int64_t shift = p.Lk - p.Lq;
    lo = p.window_left >= 0 ? std::max<int64_t>(0, i + shift - p.window_left) : 0;
    hi = p.window_right >= 0 ? std::min(len, i + shift + p.window_right + 1) : len;
  }
  static int64_t key_length(const AttnProblem<T>& p, int64_t b) {
    return p.key_lengths ? std::min(p.Lk, p.key_lengths[b]) : p.Lk;
  }

  // Adds the bias and sets masked scores (and the padded columns [n, np)) to -inf in the block
  // S (m x np, row stride kBK) of queries i0.. and keys j0.. .
  static void mask_block(const AttnProblem<T>& p, int64_t b, int64_t h, int64_t len, int64_t i0,
                         int64_t m, int64_t j0, int64_t n, int64_t np, T* S) {
    if (p.bias) {
      const int64_t* bs = p.bias_stride;
      for (int64_t r = 0; r < m; ++r) {
        const T* br = p.bias + b * bs[0] + h * bs[1] + (i0 + r) * bs[2] + j0 * bs[3];
        T* s = S + r * kBK;
        for (int64_t c = 0; c < n; ++c) s[c] += br[c * bs[3]];
      }
    }
    const uint8_t* pad = p.key_padding ? p.key_padding + b * p.Lk + j0 : nullptr;
    for (int64_t r = 0; r < m; ++r) {
      int64_t lo, hi;
      visible(p, len, i0 + r, lo, hi);
      const int64_t cl = std::clamp<int64_t>(lo - j0, 0, n);
      const int64_t ch = std::clamp<int64_t>(hi - j0, cl, n);
      T* s = S + r * kBK;
      for (int64_t c = 0; c < cl; ++c) s[c] = kNegInf;
      for (int64_t c = ch; c < np; ++c) s[c] = kNegInf;
      if (pad)
        for (int64_t c = cl; c < ch; ++c)
          if (pad[c]) s[c] = kNegInf;
    }
  }

  // Applies the dropout mask of row i, keys j0 .. j0 + n, to x in place (kept * 1 / (1 - p)).
  static void dropout_row(const AttnProblem<T>& p, int64_t b, int64_t h, int64_t i, int64_t j0,
                          int64_t n, T* x) {
    constexpr int64_t E = kDropoutPerCounter;  // elements a counter decides
    const uint64_t idx = static_cast<uint64_t>(((b * p.H + h) * p.Lq + i) * p.Lk + j0);
    const int64_t w0 = static_cast<int64_t>(idx % E);
    const int64_t head = std::min<int64_t>(n, (E - w0) % E);
    if (head > 0) {  // the first counter's elements idx % E .. E - 1
      T tmp[E] = {};
      for (int64_t t = 0; t < head; ++t) tmp[w0 + t] = x[t];
      dropout_apply(tmp, tmp, E, p.seed, p.offset + idx / E, p.dropout_p);
      for (int64_t t = 0; t < head; ++t) x[t] = tmp[w0 + t];
    }
    if (n > head)
      dropout_apply(x + head, x + head, n - head, p.seed, p.offset + (idx + head) / E,
                    p.dropout_p);
  }

  // The same for rows i0 .. i0 + m of a block (row stride kBK) to X, and the same mask to Y when
  // given. When the block spans every key (j0 = 0, n = Lk, short sequences) its rows are one run
  // of the counter stream, so one call draws the whole block's mask (as bits, which Y reuses)
  // instead of a call a row, each drawing a whole vector of counters for its few keys.
  static void dropout_rows(const AttnProblem<T>& p, int64_t b, int64_t h, int64_t i0, int64_t m,
                           int64_t j0, int64_t n, T* X, T* Y) {
    constexpr int64_t E = kDropoutPerCounter, kMax = 2048;
    if (j0 != 0 || n != p.Lk || m * n > kMax) {
      for (int64_t r = 0; r < m; ++r) {
        dropout_row(p, b, h, i0 + r, j0, n, X + r * kBK);
        if (Y) dropout_row(p, b, h, i0 + r, j0, n, Y + r * kBK);
      }
      return;
    }
    const uint64_t idx = static_cast<uint64_t>(((b * p.H + h) * p.Lq + i0) * p.Lk);
    const int64_t w0 = static_cast<int64_t>(idx % E), total = w0 + m * n;  // from a whole counter
    T tmp[kMax + E];
    uint8_t bits[(kMax + E) / 8 + 1];
    std::fill(tmp, tmp + w0, T(0));
    gather_rows(tmp + w0, X, m, n);
    dropout_apply(tmp, tmp, total, p.seed, p.offset + idx / E, p.dropout_p, Y ? bits : nullptr);
    scatter_rows(X, tmp + w0, m, n);
    if (Y) {
      gather_rows(tmp + w0, Y, m, n);
      dropout_apply_bits(tmp, tmp, total, bits, p.dropout_p);
      scatter_rows(Y, tmp + w0, m, n);
    }
  }
  // dst (m x n packed) = the first n columns of src rows (row stride kBK), and back.
  static void gather_rows(T* dst, const T* src, int64_t m, int64_t n) {
    for (int64_t r = 0; r < m; ++r) std::copy(src + r * kBK, src + r * kBK + n, dst + r * n);
  }
  static void scatter_rows(T* dst, const T* src, int64_t m, int64_t n) {
    for (int64_t r = 0; r < m; ++r) std::copy(src + r * n, src + (r + 1) * n, dst + r * kBK);
  }

  // ---- packing --------------------------------------------------------------------------------
  // dst (rows, ld) = alpha * src rows (row stride sl), zero beyond cols and beyond rows up to
  // rows_p.
  static void pack_rows(T* dst, int64_t ld, const T* src, int64_t sl, int64_t rows,
                        int64_t rows_p, int64_t cols, T alpha) {
    for (int64_t r = 0; r < rows; ++r) {
      T* d = dst + r * ld;
      const T* s = src + r * sl;
      for (int64_t c = 0; c < cols; ++c) d[c] = alpha * s[c];
      for (int64_t c = cols; c < ld; ++c) d[c] = T(0);
    }
    for (int64_t r = rows; r < rows_p; ++r) std::memset(dst + r * ld, 0, sizeof(T) * ld);
  }
  // dst (cols, np) = transpose of src rows (rows x cols, row stride sl), zero columns [rows, np).
  static void pack_transposed(T* dst, int64_t np, const T* src, int64_t sl, int64_t rows,
                              int64_t cols) {
    for (int64_t c = 0; c < cols; ++c) {
      T* d = dst + c * np;
      for (int64_t r = 0; r < rows; ++r) d[r] = src[r * sl + c];
      for (int64_t r = rows; r < np; ++r) d[r] = T(0);
    }
  }

  static T* take(T*& ws, int64_t n) {
    T* r = ws;
    ws += (n + kPad - 1) / kPad * kPad;
    return r;
  }

  // ---- forward --------------------------------------------------------------------------------
  // Task t: query blocks [qb0, qb0 + nblk) of one (b, h). Key blocks run in the outer loop, so
  // each is packed once for all the task's query blocks; running max, sum and output of every
  // row are kept in the workspace.
  static void forward(const AttnProblem<T>& p, T* o, AttnLayout os, T* lse, int64_t t,
                      int64_t nblk, T* ws) {
    const int64_t nqb = (p.Lq + kBQ - 1) / kBQ, tasks_per_head = (nqb + nblk - 1) / nblk;
    const int64_t b = t / (p.H * tasks_per_head), h = (t / tasks_per_head) % p.H;
    const int64_t r0 = (t % tasks_per_head) * nblk * kBQ;
    const int64_t rows = std::min(nblk * kBQ, p.Lq - r0);
    const int64_t hk = h / (p.H / p.Hkv);
    const int64_t D = p.D, Dv = p.Dv, Dvp = padded(Dv);
    T* Qs = take(ws, nblk * kBQ * D);
    T* Kt = take(ws, padded(D) * kBK);
    T* Vp = take(ws, kBK * Dvp);
    T* S = take(ws, kBQ * kBK);
    T* Oa = take(ws, nblk * kBQ * Dvp);
    T* mrow = take(ws, nblk * kBQ);
    T* lrow = take(ws, nblk * kBQ);

    const T* q = p.q + b * p.q_stride.b + h * p.q_stride.h + r0 * p.q_stride.l;
    pack_rows(Qs, D, q, p.q_stride.l, rows, rows, D, static_cast<T>(p.scale));
    std::fill(Oa, Oa + rows * Dvp, T(0));
    std::fill(mrow, mrow + rows, kNegInf);
    std::fill(lrow, lrow + rows, T(0));

    const int64_t len = key_length(p, b);
    int64_t jlo, jhi, unused;
    visible(p, len, r0, jlo, unused);
    visible(p, len, r0 + rows - 1, unused, jhi);
    const T* kh = p.k + b * p.k_stride.b + hk * p.k_stride.h;
    const T* vh = p.v + b * p.v_stride.b + hk * p.v_stride.h;
    if (rows <= kFewRows) {  // decoding: no packing, dot products straight from K and V rows
      for (int64_t j0 = jlo; j0 < jhi; j0 += kBK) {
        const int64_t n = std::min(kBK, jhi - j0), np = padded(n);
        scores_rows(rows, D, Qs, kh + j0 * p.k_stride.l, p.k_stride.l, n, S);
        mask_block(p, b, h, len, r0, rows, j0, n, np, S);
        online_softmax(p, b, h, r0, rows, j0, n, np, S, mrow, lrow, Oa, Dvp);
        pv_rows(rows, Dv, S, vh + j0 * p.v_stride.l, p.v_stride.l, n, Oa, Dvp);
      }
    } else {
      for (int64_t j0 = jlo; j0 < jhi; j0 += kBK) {
        const int64_t n = std::min(kBK, jhi - j0), np = padded(n);
        pack_transposed(Kt, np, kh + j0 * p.k_stride.l, p.k_stride.l, n, D);
        pack_rows(Vp, Dvp, vh + j0 * p.v_stride.l, p.v_stride.l, n, np, Dv, T(1));
        for (int64_t i0 = r0; i0 < r0 + rows; i0 += kBQ) {
          const int64_t m = std::min(kBQ, r0 + rows - i0), x = i0 - r0;
          int64_t lo_first, hi_last;
          visible(p, len, i0, lo_first, unused);
          visible(p, len, i0 + m - 1, unused, hi_last);
          if (hi_last <= j0 || lo_first >= j0 + n) continue;  // the block sees none of these keys
          gemm(m, np, D, Qs + x * D, D, 1, Kt, np, S, kBK, false);  // S (m, np)
          mask_block(p, b, h, len, i0, m, j0, n, np, S);
          online_softmax(p, b, h, i0, m, j0, n, np, S, mrow + x, lrow + x, Oa + x * Dvp, Dvp);
          gemm(m, Dvp, np, S, kBK, 1, Vp, Dvp, Oa + x * Dvp, Dvp, true);  // O += P V
        }
      }
    }
    T* orow0 = o + b * os.b + h * os.h + r0 * os.l;
    for (int64_t r = 0; r < rows; ++r) {
      const T inv = lrow[r] > 0 ? T(1) / lrow[r] : T(0);
      T* dst = orow0 + r * os.l;
      const T* src = Oa + r * Dvp;
      for (int64_t c = 0; c < Dv; ++c) dst[c] = src[c] * inv;
    }
    if (lse) {
      T* lrow0 = lse + (b * p.H + h) * p.Lq + r0;
      for (int64_t r = 0; r < rows; ++r)
        lrow0[r] = lrow[r] > 0 ? mrow[r] + std::log(lrow[r]) : kNegInf;
    }
  }

  // ---- short key sequences: queries in the lanes ------------------------------------------
  // For a problem without bias, window or dropout whose keys fit short_workspace (a vit's 50
  // tokens, a sentence): W queries at a time sit in the lanes of a vector. S^T (Lk, W) = K Qs^T
  // with the group's queries transposed once; the softmax runs down the keys (a vertical max and
  // sum: no horizontal reductions, no padding columns to mask); O^T (Dv, W) = V^T P^T accumulates
  // in registers, kShortDv value dims at a time. Keys past key_lengths[b] are not read, padded
  // keys are skipped. A tail of kFewRows queries or fewer runs the few-rows path of forward (a
  // vector pass would cost as much as W rows). Task t: one (b, h), all its queries. lse may be
  // null (inference).
  static constexpr int kShortDv = 16;

  // O^T rows d0 .. d0 + DN: acc (DN vectors of W lanes) = sum over visible keys j of
  // V[j, d] * P^T[j], then times inv (1 / the lanes' sums).
  template <int DN>
  static void short_pv(const T* vh, int64_t vl, const uint8_t* pad, int64_t len, const T* St,
                       V inv, T* Ot) {
    V acc[DN];
#pragma GCC unroll 16
    for (int c = 0; c < DN; ++c) acc[c] = V{};
    for (int64_t j = 0; j < len; ++j) {
      if (pad && pad[j]) continue;
      const V e = load(St + j * W);
      const T* vr = vh + j * vl;
#pragma GCC unroll 16
      for (int c = 0; c < DN; ++c) acc[c] += bcast(vr[c]) * e;
    }
#pragma GCC unroll 16
    for (int c = 0; c < DN; ++c) store(Ot + c * W, acc[c] * inv);
  }

  static void forward_short(const AttnProblem<T>& p, T* o, AttnLayout os, T* lse, int64_t t,
                            T* ws) {
    const int64_t b = t / p.H, h = t % p.H, hk = h / (p.H / p.Hkv);
    const int64_t D = p.D, Dv = p.Dv, len = key_length(p, b), kl = p.k_stride.l, vl = p.v_stride.l;
    const uint8_t* pad = p.key_padding ? p.key_padding + b * p.Lk : nullptr;
    const T* qh = p.q + b * p.q_stride.b + h * p.q_stride.h;
    const T* kh = p.k + b * p.k_stride.b + hk * p.k_stride.h;
    const T* vh = p.v + b * p.v_stride.b + hk * p.v_stride.h;
    T* Qt = take(ws, D * W);     // (D, W): the group's queries times scale, one per lane
    // (Lk, W): scores, then exp(score - max); or the workspace of a tail's few-rows forward
    T* St = take(ws, std::max(p.Lk * W, forward_workspace(D, Dv, 1)));
    T* Ot = take(ws, Dv * W);    // (Dv, W): the group's outputs
    T* stat = take(ws, 2 * W);   // the lanes' max and sum (for the LSE)
    const T scale = static_cast<T>(p.scale);
    bool any_visible = false;
    for (int64_t j = 0; j < len && !any_visible; ++j) any_visible = !(pad && pad[j]);
    for (int64_t i0 = 0; i0 < p.Lq; i0 += W) {
      const int64_t lanes = std::min<int64_t>(W, p.Lq - i0);
      if (lanes <= kFewRows && W > 1) {  // a short tail: a whole vector pass costs more
        AttnProblem<T> tail = p;  // rows i0.. of this head alone, through the few-rows path
        tail.B = tail.H = tail.Hkv = 1, tail.Lq = lanes;
        tail.q = qh + i0 * p.q_stride.l, tail.k = kh, tail.v = vh;
        tail.key_lengths = p.key_lengths ? p.key_lengths + b : nullptr;
        tail.key_padding = pad;
        forward(tail, o + b * os.b + h * os.h + i0 * os.l, os,
                lse ? lse + (b * p.H + h) * p.Lq + i0 : nullptr, 0, 1, St);
        break;
      }
      T* orow = o + b * os.b + h * os.h + i0 * os.l;
      T* lrow = lse ? lse + (b * p.H + h) * p.Lq + i0 : nullptr;
      if (!any_visible) {  // nothing to attend to: zero output, LSE -inf
        for (int64_t l = 0; l < lanes; ++l) {
          std::fill(orow + l * os.l, orow + l * os.l + Dv, T(0));
          if (lrow) lrow[l] = kNegInf;
        }
        continue;
      }
      for (int64_t l = 0; l < W; ++l) {
        const T* q = qh + (i0 + l) * p.q_stride.l;
        for (int64_t d = 0; d < D; ++d) Qt[d * W + l] = l < lanes ? scale * q[d] : T(0);
      }
      // S^T: four keys at a time, two partial sums each (eight independent chains).
      int64_t j = 0;
      for (; j + 4 <= len; j += 4) {
        const T *k0 = kh + j * kl, *k1 = k0 + kl, *k2 = k1 + kl, *k3 = k2 + kl;
        V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{}, c0 = V{}, c1 = V{}, c2 = V{}, c3 = V{};
        int64_t d = 0;
        for (; d + 2 <= D; d += 2) {
          const V x = load(Qt + d * W), y = load(Qt + (d + 1) * W);
          a0 += bcast(k0[d]) * x, c0 += bcast(k0[d + 1]) * y;
          a1 += bcast(k1[d]) * x, c1 += bcast(k1[d + 1]) * y;
          a2 += bcast(k2[d]) * x, c2 += bcast(k2[d + 1]) * y;
          a3 += bcast(k3[d]) * x, c3 += bcast(k3[d + 1]) * y;
        }
        if (d < D) {
          const V x = load(Qt + d * W);
          a0 += bcast(k0[d]) * x, a1 += bcast(k1[d]) * x;
          a2 += bcast(k2[d]) * x, a3 += bcast(k3[d]) * x;
        }
        store(St + j * W, a0 + c0);
        store(St + (j + 1) * W, a1 + c1);
        store(St + (j + 2) * W, a2 + c2);
        store(St + (j + 3) * W, a3 + c3);
      }
      for (; j < len; ++j) {
        const T* kr = kh + j * kl;
        V a = V{};
        for (int64_t d = 0; d < D; ++d) a += bcast(kr[d]) * load(Qt + d * W);
        store(St + j * W, a);
      }
      V mx = bcast(kNegInf);
      for (j = 0; j < len; ++j)
        if (!(pad && pad[j])) mx = vmax(mx, load(St + j * W));
      V sum = V{};
      for (j = 0; j < len; ++j) {
        if (pad && pad[j]) continue;
        const V e = Simd::vexp(load(St + j * W) - mx);
        store(St + j * W, e);
        sum += e;
      }
      const V inv = bcast(T(1)) / sum;
      int64_t d0 = 0;
      for (; d0 + kShortDv <= Dv; d0 += kShortDv)
        short_pv<kShortDv>(vh + d0, vl, pad, len, St, inv, Ot + d0 * W);
      for (; d0 + 4 <= Dv; d0 += 4) short_pv<4>(vh + d0, vl, pad, len, St, inv, Ot + d0 * W);
      for (; d0 < Dv; ++d0) short_pv<1>(vh + d0, vl, pad, len, St, inv, Ot + d0 * W);
      for (int64_t l = 0; l < lanes; ++l)
        for (int64_t d = 0; d < Dv; ++d) orow[l * os.l + d] = Ot[d * W + l];
      if (lrow) {
        store(stat, mx);
        store(stat + W, sum);
        for (int64_t l = 0; l < lanes; ++l) lrow[l] = stat[l] + std::log(stat[W + l]);
      }
    }
  }

  // ---- few query rows (decoding) ---------------------------------------------------------
  static constexpr int64_t kFewRows = 4;

  static T dot(const T* a, const T* x, int64_t n) {
    V acc = V{};
    int64_t d = 0;
    for (; d + W <= n; d += W) acc += load(a + d) * load(x + d);
    T s = hsum(acc);
    for (; d < n; ++d) s += a[d] * x[d];
    return s;
  }
  // S (rows x n, row stride kBK) = Qs (rows x D) K^T for n key rows k (row stride kl): four keys
  // at a time, so four independent sums hide the FMA latency.
  static void scores_rows(int64_t rows, int64_t D, const T* Qs, const T* k, int64_t kl,
                          int64_t n, T* S) {
    const int64_t Dw = D / W * W;
    for (int64_t r = 0; r < rows; ++r) {
      const T* q = Qs + r * D;
      T* s = S + r * kBK;
      int64_t c = 0;
      for (; c + 4 <= n; c += 4) {
        const T *k0 = k + c * kl, *k1 = k0 + kl, *k2 = k1 + kl, *k3 = k2 + kl;
        V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{};
        for (int64_t d = 0; d < Dw; d += W) {
          const V x = load(q + d);
          a0 += x * load(k0 + d);
          a1 += x * load(k1 + d);
          a2 += x * load(k2 + d);
          a3 += x * load(k3 + d);
        }
        T s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        for (int64_t d = Dw; d < D; ++d) {
          s0 += q[d] * k0[d];
          s1 += q[d] * k1[d];
          s2 += q[d] * k2[d];
          s3 += q[d] * k3[d];
        }
        s[c] = s0;
        s[c + 1] = s1;
        s[c + 2] = s2;
        s[c + 3] = s3;
      }
      for (; c < n; ++c) s[c] = dot(q, k + c * kl, D);
    }
  }
  // NV vectors of one output row o kept in registers while n value rows v (row stride vl) are
  // added with the weights p.
  template <int NV>
  static void pv_chunk(const T* p, const T* v, int64_t vl, int64_t n, T* o) {
    V acc[NV];
#pragma GCC unroll 8
    for (int t = 0; t < NV; ++t) acc[t] = load(o + t * W);
    for (int64_t c = 0; c < n; ++c) {
      const V pc = bcast(p[c]);
      const T* vr = v + c * vl;
#pragma GCC unroll 8
      for (int t = 0; t < NV; ++t) acc[t] += pc * load(vr + t * W);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NV; ++t) store(o + t * W, acc[t]);
  }
  // Oa (rows x Dv, row stride Dvp) += P (rows x n) V for n value rows v (row stride vl): up to 8
  // vectors of the output row in registers across all n keys (no load and store of Oa per key).
  static void pv_rows(int64_t rows, int64_t Dv, const T* P, const T* v, int64_t vl, int64_t n,
                      T* Oa, int64_t Dvp) {
    const int64_t Dw = Dv / W * W;
    for (int64_t r = 0; r < rows; ++r) {
      T* o = Oa + r * Dvp;
      const T* p = P + r * kBK;
      for (int64_t d0 = 0; d0 < Dw; d0 += 8 * W) {
        switch (std::min<int64_t>(8, (Dw - d0) / W)) {
          case 1: pv_chunk<1>(p, v + d0, vl, n, o + d0); break;
          case 2: pv_chunk<2>(p, v + d0, vl, n, o + d0); break;
          case 3: pv_chunk<3>(p, v + d0, vl, n, o + d0); break;
          case 4: pv_chunk<4>(p, v + d0, vl, n, o + d0); break;
          case 5: pv_chunk<5>(p, v + d0, vl, n, o + d0); break;
          case 6: pv_chunk<6>(p, v + d0, vl, n, o + d0); break;
          case 7: pv_chunk<7>(p, v + d0, vl, n, o + d0); break;
          default: pv_chunk<8>(p, v + d0, vl, n, o + d0); break;
        }
      }
      for (int64_t d = Dw; d < Dv; ++d) {  // the rows of v are not padded: scalar tail
        T acc = o[d];
        for (int64_t c = 0; c < n; ++c) acc += p[c] * v[c * vl + d];
        o[d] = acc;
      }
    }
  }

  // One key block of the online softmax for rows i0 .. i0 + m: S becomes the block's (dropped
  // out) probabilities relative to the new running max; the running sums and outputs are
  // rescaled to that max.
  static void online_softmax(const AttnProblem<T>& p, int64_t b, int64_t h, int64_t i0,
                             int64_t m, int64_t j0, int64_t n, int64_t np, T* S, T* mrow,
                             T* lrow, T* Oa, int64_t Dvp) {
    for (int64_t r = 0; r < m; ++r) {
      T* s = S + r * kBK;
      V mx = bcast(kNegInf);
      for (int64_t c = 0; c < np; c += W) mx = vmax(mx, load(s + c));
      const T mnew = std::max(mrow[r], hmax(mx));
      if (mnew == kNegInf) {  // nothing visible to this row yet
        std::fill(s, s + np, T(0));
        continue;
      }
      const T alpha = mnew == mrow[r] ? T(1) : vexp<T>(mrow[r] - mnew);  // the max rarely moves
      const V mv = bcast(mnew);
      V sum = V{};
      for (int64_t c = 0; c < np; c += W) {
        const V e = Simd::vexp(load(s + c) - mv);
        store(s + c, e);
        sum += e;
      }
      lrow[r] = lrow[r] * alpha + hsum(sum);
      mrow[r] = mnew;
      if (alpha != T(1)) {
        const V av = bcast(alpha);
        T* orow = Oa + r * Dvp;
        for (int64_t c = 0; c < Dvp; c += W) store(orow + c, load(orow + c) * av);
      }
    }
    if (p.dropout_p > 0) dropout_rows(p, b, h, i0, m, j0, n, S, nullptr);
  }

  // P = exp(S - lse) in place for the block rows (lse = -inf: zero row).
  static void probs_block(const T* lse_rows, int64_t m, int64_t np, T* S) {
    for (int64_t r = 0; r < m; ++r) {
      T* s = S + r * kBK;
      if (lse_rows[r] == kNegInf) {
        std::fill(s, s + np, T(0));
        continue;
      }
      const V l = bcast(lse_rows[r]);
      for (int64_t c = 0; c < np; c += W) store(s + c, Simd::vexp(load(s + c) - l));
    }
  }

  // ---- backward -------------------------------------------------------------------------------
  static T* backward(const AttnProblem<T>& p, const BackwardIO<T>& io, int64_t t, int64_t chunks,
                     T* ws) {
    const int64_t G = p.H / p.Hkv;
    const int64_t b = t / (p.Hkv * chunks), hk = (t / chunks) % p.Hkv, chunk = t % chunks;
    const int64_t D = p.D, Dv = p.Dv, Dp = padded(D), Dvp = padded(Dv);
    T* Kt = take(ws, Dp * kBK);
    T* Kr = take(ws, kBK * Dp);
    T* Vt = take(ws, Dvp * kBK);
    T* Qs = take(ws, kBQ * Dp);
    T* dOp = take(ws, kBQ * Dvp);
    T* S = take(ws, kBQ * kBK);
    T* Pd = take(ws, kBQ * kBK);
    T* dP = take(ws, kBQ * kBK);
    T* dKa = take(ws, kBK * Dp);
    T* dVa = take(ws, kBK * Dvp);
    T* dQa = take(ws, G * p.Lq * Dp);
    std::fill(dQa, dQa + G * p.Lq * Dp, T(0));

    const int64_t len = key_length(p, b), shift = p.Lk - p.Lq;
    const int64_t nkb = (len + kBK - 1) / kBK;
    const int64_t kb0 = nkb * chunk / chunks, kb1 = nkb * (chunk + 1) / chunks;
    const T* kh = p.k + b * p.k_stride.b + hk * p.k_stride.h;
    const T* vh = p.v + b * p.v_stride.b + hk * p.v_stride.h;
    const T scale = static_cast<T>(p.scale);
    for (int64_t kb = kb0; kb < kb1; ++kb) {
      const int64_t j0 = kb * kBK, n = std::min(kBK, len - j0), np = padded(n);
      pack_transposed(Kt, np, kh + j0 * p.k_stride.l, p.k_stride.l, n, D);
      pack_rows(Kr, Dp, kh + j0 * p.k_stride.l, p.k_stride.l, n, np, D, T(1));
      pack_transposed(Vt, np, vh + j0 * p.v_stride.l, p.v_stride.l, n, Dv);
      std::fill(dKa, dKa + np * Dp, T(0));
      std::fill(dVa, dVa + np * Dvp, T(0));
      // Queries that see a key of this block.
      int64_t qlo = 0, qhi = p.Lq;
      if (p.window_right >= 0) qlo = std::max<int64_t>(0, j0 - shift - p.window_right);
      if (p.window_left >= 0) qhi = std::min<int64_t>(p.Lq, j0 + n - shift + p.window_left);
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = hk * G + g;
        const int64_t row0 = (b * p.H + h) * p.Lq;
        for (int64_t i0 = qlo; i0 < qhi; i0 += kBQ) {
          const int64_t m = std::min(kBQ, qhi - i0);
          pack_rows(Qs, Dp, p.q + b * p.q_stride.b + h * p.q_stride.h + i0 * p.q_stride.l,
                    p.q_stride.l, m, m, D, scale);
          pack_rows(dOp, Dvp,
                    io.dout + b * io.dout_stride.b + h * io.dout_stride.h + i0 * io.dout_stride.l,
                    io.dout_stride.l, m, m, Dv, T(1));
          gemm(m, np, D, Qs, Dp, 1, Kt, np, S, kBK, false);  // S (m, np)
          mask_block(p, b, h, len, i0, m, j0, n, np, S);
          probs_block(io.lse + row0 + i0, m, np, S);             // P
          gemm(m, np, Dv, dOp, Dvp, 1, Vt, np, dP, kBK, false);  // dP = dO V^T
          const T* Pv = S;
          if (p.dropout_p > 0) {
            for (int64_t r = 0; r < m; ++r) std::memcpy(Pd + r * kBK, S + r * kBK, sizeof(T) * np);
            dropout_rows(p, b, h, i0, m, j0, n, Pd, dP);
            Pv = Pd;
          }
          gemm(n, Dvp, m, Pv, 1, kBK, dOp, Dvp, dVa, Dvp, true);  // dV += P^T dO
          for (int64_t r = 0; r < m; ++r) {                       // dS = P (dP - delta)
            const V dl = bcast(io.delta[row0 + i0 + r]);
            T* s = S + r * kBK;
            const T* dp = dP + r * kBK;
            for (int64_t c = 0; c < np; c += W) store(s + c, load(s + c) * (load(dp + c) - dl));
          }
          if (io.dbias)
            for (int64_t r = 0; r < m; ++r)
              std::memcpy(io.dbias + (row0 + i0 + r) * p.Lk + j0, S + r * kBK, sizeof(T) * n);
          gemm(n, Dp, m, S, 1, kBK, Qs, Dp, dKa, Dp, true);  // dK += dS^T Qs
          gemm(m, Dp, np, S, kBK, 1, Kr, Dp, dQa + (g * p.Lq + i0) * Dp, Dp, true);  // dQ += dS K
        }
      }
      T* dk = io.dk + b * io.dk_stride.b + hk * io.dk_stride.h + j0 * io.dk_stride.l;
      T* dv = io.dv + b * io.dv_stride.b + hk * io.dv_stride.h + j0 * io.dv_stride.l;
      for (int64_t c = 0; c < n; ++c) {
        for (int64_t d = 0; d < D; ++d) dk[c * io.dk_stride.l + d] += dKa[c * Dp + d];
        for (int64_t d = 0; d < Dv; ++d) dv[c * io.dv_stride.l + d] += dVa[c * Dvp + d];
      }
    }
    return dQa;
  }

  // ---- maps on demand -------------------------------------------------------------------------
  static void probs(const AttnProblem<T>& p, const T* lse, int64_t b, int64_t h, int64_t i0,
                    int64_t m, T* out, int64_t ldo, T* ws) {
    const int64_t D = p.D, Dp = padded(D);
    const int64_t hk = h / (p.H / p.Hkv), len = key_length(p, b);
    T* Qs = take(ws, kBQ * Dp);
    T* Kt = take(ws, Dp * kBK);
    T* S = take(ws, kBQ * kBK);
    pack_rows(Qs, D, p.q + b * p.q_stride.b + h * p.q_stride.h + i0 * p.q_stride.l, p.q_stride.l,
              m, m, D, static_cast<T>(p.scale));
    const T* kh = p.k + b * p.k_stride.b + hk * p.k_stride.h;
    for (int64_t j0 = 0; j0 < p.Lk; j0 += kBK) {
      const int64_t n = std::min(kBK, p.Lk - j0), np = padded(n);
      const int64_t nk = std::clamp<int64_t>(len - j0, 0, n);  // keys beyond len are masked
      pack_transposed(Kt, np, kh + j0 * p.k_stride.l, p.k_stride.l, nk, D);
      gemm(m, np, D, Qs, D, 1, Kt, np, S, kBK, false);
      mask_block(p, b, h, len, i0, m, j0, n, np, S);
      probs_block(lse + (b * p.H + h) * p.Lq + i0, m, np, S);
      for (int64_t r = 0; r < m; ++r) std::memcpy(out + r * ldo + j0, S + r * kBK, sizeof(T) * n);
    }
  }

  static TaskSet<T> task_set() { return {&forward, &backward, &probs, &forward_short}; }
};

}  // namespace
}  // namespace focus::attn
