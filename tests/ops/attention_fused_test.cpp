// The fused attention kernels against the reference built from primitives: forward and all
// gradients (dq, dk, dv, dbias) in F32 on every ISA path the CPU has, over the lengths
// (1 .. 1000), head dims (16 .. 128), every mask kind and combinations, GQA ratios 1..8, cross
// attention and dropout; a finite-difference check of the fused kernel in F64 with windows;
// maps on demand and statistics against the reference's probabilities.
//   Letters: B batch, H query heads, Hkv K/V heads, Lq queries, Lk keys, D head dim, Dv value dim.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "focus/kernels/attention.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/ops/attention.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "support/attention_isas.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::gradcheck;
using focus::testing::rand_input;

namespace {

struct Case {
  std::string name;
  int64_t B, H, Hkv, Lq, Lk, D, Dv;
  bool causal = false;
  int64_t window_left = -1, window_right = -1;
  bool lengths = false, padding = false, bias = false, bias_grad = true;
  double dropout = 0.0;
};

struct Result {
  Tensor out, dq, dk, dv, dbias;
};

struct Inputs {
  Tensor q, k, v, r, bias, lengths, padding;
};

Inputs make_inputs(const Case& c, Rng& rng) {
  Inputs in;
  in.q = Tensor::randn({c.B, c.H, c.Lq, c.D}, rng);      // (B, H, Lq, D)
  in.k = Tensor::randn({c.B, c.Hkv, c.Lk, c.D}, rng);    // (B, Hkv, Lk, D)
  in.v = Tensor::randn({c.B, c.Hkv, c.Lk, c.Dv}, rng);   // (B, Hkv, Lk, Dv)
  in.r = Tensor::randn({c.B, c.H, c.Lq, c.Dv}, rng);     // the loss weights
  if (c.bias) in.bias = Tensor::randn({1, c.H, c.Lq, c.Lk}, rng);  // broadcast over B
  if (c.lengths) {
    std::vector<int64_t> len(c.B);
    for (int64_t b = 0; b < c.B; ++b) len[b] = b == 0 ? c.Lk : rng.randint(c.Lk + 1);
    in.lengths = Tensor::from_vector(len, {c.B});
  }
  if (c.padding) {
    std::vector<int64_t> pad(c.B * c.Lk);
    for (auto& x : pad) x = rng.uniform() < 0.3;
    in.padding = Tensor::from_vector(pad, {c.B, c.Lk});
  }
  return in;
}

// Output and gradients of sum(attention * r) with kernel `kern` in dtype `dt`.
Result run(const Case& c, const Inputs& in, AttentionKernel kern, DType dt) {
  Tensor q = in.q.to(dt).clone(), k = in.k.to(dt).clone(), v = in.v.to(dt).clone();
  q.requires_grad_();
  k.requires_grad_();
  v.requires_grad_();
  AttentionOptions o;
  o.kernel = kern;
  o.causal = c.causal;
  o.window_left = c.window_left;
  o.window_right = c.window_right;
  o.key_lengths = in.lengths;
  o.key_padding_mask = in.padding;
  Tensor bias;
  if (c.bias) {
    bias = in.bias.to(dt).clone();
    bias.requires_grad_(c.bias_grad);
    o.bias = bias;
  }
  Rng rng(77);
  if (c.dropout > 0) {
    o.dropout_p = c.dropout;
    o.training = true;
    o.rng = &rng;
  }
  const Tensor out = scaled_dot_product_attention(q, k, v, o);
  EXPECT_EQ(last_attention_kernel(), kern);
  sum(mul(out, in.r.to(dt))).backward();
  return {out, q.grad(), k.grad(), v.grad(), c.bias && c.bias_grad ? bias.grad() : Tensor()};
}

// max |a - b| / max(1, max |b|).
double err(const Tensor& a, const Tensor& b) { return focus::testing::max_rel_diff(a, b); }

void expect_close(const Case& c, const Result& f, const Result& ref, double tol) {
  EXPECT_LT(err(f.out, ref.out), tol) << c.name << " out";
  EXPECT_LT(err(f.dq, ref.dq), tol) << c.name << " dq";
  EXPECT_LT(err(f.dk, ref.dk), tol) << c.name << " dk";
  EXPECT_LT(err(f.dv, ref.dv), tol) << c.name << " dv";
  if (ref.dbias.defined()) {
    EXPECT_LT(err(f.dbias, ref.dbias), tol) << c.name << " dbias";
  }
}

std::vector<Case> random_cases() {
  const int64_t lens[] = {1, 7, 63, 64, 65, 129, 1000};
  const int64_t dims[] = {16, 32, 64, 80, 128};
  const int64_t ratios[] = {1, 2, 4, 8};
  Rng rng(2024);
  std::vector<Case> cs;
  for (int64_t i = 0; i < 28; ++i) {
    Case c;
    c.Lq = lens[i % 7];
    c.Lk = i % 3 == 0 ? lens[rng.randint(7)] : c.Lq;  // a third cross attention
    c.D = dims[i % 5];
    c.Dv = i % 4 == 3 ? dims[(i + 2) % 5] : c.D;
    const int64_t G = ratios[i % 4];
    c.Hkv = c.Lq >= 1000 || c.Lk >= 1000 ? 1 : 1 + rng.randint(2);
    c.H = c.Hkv * G;
    c.B = c.Lq * c.Lk >= 100000 ? 1 : 1 + rng.randint(2);
    if (c.Lq >= 1000 && c.Lk >= 1000) c.H = std::min<int64_t>(c.H, 2), c.Hkv = 1;
    const int64_t kind = i % 7;
    c.causal = kind == 1 || kind == 5;
    c.lengths = kind == 2 || kind == 5;
    c.padding = kind == 3 || kind == 6;
    c.bias = kind == 4 || kind == 6;
    if (kind == 5 && c.Lk > 4) c.window_left = c.Lk / 4;  // causal sliding window
    if (kind == 6) c.window_left = c.window_right = 5;    // symmetric local window
    c.dropout = i % 9 == 8 ? 0.2 : 0.0;
    c.name = "case" + std::to_string(i) + " B" + std::to_string(c.B) + " H" +
             std::to_string(c.H) + "/" + std::to_string(c.Hkv) + " Lq" + std::to_string(c.Lq) +
             " Lk" + std::to_string(c.Lk) + " D" + std::to_string(c.D) + "/" +
             std::to_string(c.Dv) + " kind" + std::to_string(kind);
    cs.push_back(c);
  }
  return cs;
}

// Forces `isa` for its scope; the path the kernel will take must be the one forced, so a trace
// that names a path names the path that ran.
struct IsaGuard {
  explicit IsaGuard(AttentionIsa isa) {
    set_attention_isa(isa);
    EXPECT_EQ(attention_isa(), isa) << "forced " << attention_isa_name(isa) << ", runs "
                                    << attention_isa_name(attention_isa());
  }
  ~IsaGuard() { set_attention_isa(AttentionIsa::Auto); }
};

}  // namespace

// F32 fused on every ISA path vs the reference in F64 (the oracle), forward and every gradient.
TEST(FusedAttention, MatchesReferenceOverShapesMasksAndIsas) {
  Rng rng(5);
  for (const Case& c : random_cases()) {
    const Inputs in = make_inputs(c, rng);
    const Result ref = run(c, in, AttentionKernel::Reference, DType::F64);
    for (AttentionIsa isa : focus::testing::attention_isas()) {
      // The scalar path runs the small cases only (it is the slow one).
      if (isa == AttentionIsa::Scalar && c.Lq * c.Lk > 70000) continue;
      IsaGuard guard(isa);
      SCOPED_TRACE(attention_isa_name(isa));
      expect_close(c, run(c, in, AttentionKernel::Fused, DType::F32), ref, 1e-4);
    }
  }
}

// Fully masked rows, a zero key length, every combination of masks with GQA 8 and a bias
// without gradient.
TEST(FusedAttention, EdgeCasesMatchReference) {
  Rng rng(6);
  std::vector<Case> cs;
  Case c{"all_masks_gqa8", 2, 8, 1, 70, 70, 32, 32};
  c.causal = c.lengths = c.padding = c.bias = true;
  c.window_left = 9;
  cs.push_back(c);
  c = {"dead_rows_window", 2, 2, 2, 40, 40, 16, 16};
  c.window_left = 3;
  c.window_right = -1;
  c.lengths = true;  // rows beyond a short length see nothing in their window
  cs.push_back(c);
  c = {"bias_no_grad_cross_causal", 1, 4, 2, 5, 130, 64, 64};
  c.causal = c.bias = true;
  c.bias_grad = false;
  cs.push_back(c);
  c = {"dropout_gqa_masks", 2, 4, 2, 65, 65, 32, 32};
  c.dropout = 0.3;
  c.causal = c.padding = true;
  cs.push_back(c);
  // Short rows: each block spans every key, so one call draws a block's mask (and the backward
  // reuses it as bits); an odd Lk puts the blocks' first elements mid-counter.
  c = {"dropout_short_rows", 3, 4, 2, 12, 11, 16, 16};
  c.dropout = 0.3;
  c.padding = true;
  cs.push_back(c);
  c = {"dropout_short_rows_causal", 2, 2, 2, 70, 9, 24, 24};  // two query blocks: 64 + 6 rows
  c.dropout = 0.5;
  c.causal = true;
  cs.push_back(c);
  c = {"few_rows_decode_tails", 2, 4, 2, 3, 150, 40, 24};  // the decoding path, ragged dims
  c.causal = c.lengths = true;
  cs.push_back(c);
  for (const Case& x : cs) {
    Inputs in = make_inputs(x, rng);
    if (x.lengths) in.lengths = Tensor::from_vector(std::vector<int64_t>{x.Lk, 0}, {2});
    expect_close(x, run(x, in, AttentionKernel::Fused, DType::F32),
                 run(x, in, AttentionKernel::Reference, DType::F64), 1e-4);
    expect_close(x, run(x, in, AttentionKernel::Fused, DType::F64),
                 run(x, in, AttentionKernel::Reference, DType::F64), 1e-12);
  }
}

// The fused kernel's own gradients by finite differences in F64, with a window, lengths, bias
// and GQA together (the reference's are checked in tests/nn/attention_op_test.cpp).
TEST(FusedAttention, FiniteDifferenceGradients) {
  Rng rng(7);
  const std::vector<Tensor> x = {rand_input({2, 4, 5, 3}, rng), rand_input({2, 2, 6, 3}, rng),
                                 rand_input({2, 2, 6, 4}, rng), rand_input({1, 4, 5, 6}, rng)};
  EXPECT_TRUE(gradcheck(
      [&](const std::vector<Tensor>& in) {
        AttentionOptions o;
        o.kernel = AttentionKernel::Fused;
        o.causal = true;
        o.window_left = 2;
        o.key_lengths = Tensor::from_vector(std::vector<int64_t>{6, 4}, {2});
        o.bias = in[3];
        return scaled_dot_product_attention(in[0], in[1], in[2], o);
      },
      x));
}

// Exact maps from the LSE equal the reference probabilities; statistics equal their definition.
TEST(FusedAttention, MapsOnDemandAndStatistics) {
  Rng rng(8);
  Case c{"maps", 2, 4, 2, 100, 150, 32, 32};
  c.causal = c.padding = c.bias = true;
  const Inputs in = make_inputs(c, rng);
  AttentionOptions o;
  o.causal = true;
  o.key_padding_mask = in.padding;
  o.bias = in.bias;
  o.kernel = AttentionKernel::Reference;
  Tensor ref_w;
  scaled_dot_product_attention(in.q, in.k, in.v, o, &ref_w);  // (B, H, Lq, Lk)

  AttentionRecord rec;
  AttentionStats st;
  o.kernel = AttentionKernel::Fused;
  o.record = &rec;
  o.stats = &st;
  o.stats_top_k = 3;
  Tensor fused_w;
  scaled_dot_product_attention(in.q, in.k, in.v, o, &fused_w);
  EXPECT_LT(err(fused_w, ref_w), 1e-5);
  EXPECT_FALSE(fused_w.requires_grad());
  // Chosen heads and rows.
  const Tensor part = attention_probabilities(rec, 10, 30, {3, 1});  // (B, 2, 20, Lk)
  const Tensor expect = ref_w.slice(2, 10, 30);
  EXPECT_LT(err(part.select(1, 0), expect.select(1, 3)), 1e-5);
  EXPECT_LT(err(part.select(1, 1), expect.select(1, 1)), 1e-5);
  // Streamed blocks cover every row once and equal the reference.
  int64_t rows = 0;
  double worst = 0;
  for_each_attention_block(rec, 48, [&](int64_t b, int64_t h, int64_t i0, const Tensor& p) {
    rows += p.size(0);
    worst = std::max(worst, err(p, ref_w.select(0, b).select(0, h).slice(0, i0, i0 + p.size(0))));
  });
  EXPECT_EQ(rows, c.B * c.H * c.Lq);
  EXPECT_LT(worst, 1e-5);
  // Statistics against their definitions on the reference weights.
  const auto w = ref_w.to_vector<double>();
  const auto recv = st.received.to_vector<double>(), ent = st.entropy.to_vector<double>();
  const auto ti = st.topk_index.to_vector<int64_t>();
  for (int64_t bh = 0; bh < c.B * c.H; ++bh) {
    for (int64_t j = 0; j < c.Lk; ++j) {
      double s = 0;
      for (int64_t i = 0; i < c.Lq; ++i) s += w[(bh * c.Lq + i) * c.Lk + j];
      ASSERT_NEAR(recv[bh * c.Lk + j], s, 1e-4);
    }
    for (int64_t i = 0; i < c.Lq; ++i) {
      const double* row = w.data() + (bh * c.Lq + i) * c.Lk;
      double e = 0;
      for (int64_t j = 0; j < c.Lk; ++j)
        if (row[j] > 0) e -= row[j] * std::log(row[j]);
      ASSERT_NEAR(ent[bh * c.Lq + i], e, 1e-4);
      const double top = *std::max_element(row, row + c.Lk);
      ASSERT_NEAR(row[ti[(bh * c.Lq + i) * 3]], top, 1e-6);
    }
  }
  // Records need the fused kernel; a bad row range is a ValueError.
  o.kernel = AttentionKernel::Reference;
  EXPECT_THROW(scaled_dot_product_attention(in.q, in.k, in.v, o), ValueError);
  EXPECT_THROW(attention_probabilities(rec, 5, 200), ValueError);
  EXPECT_THROW(attention_probabilities(AttentionRecord{}), ValueError);
}

// Strided inputs (heads inside the row, as projections give) read without copies give the same
// result as packed ones, and the output is a view of a (B, Lq, H, Dv) buffer.
TEST(FusedAttention, StridedLayouts) {
  Rng rng(9);
  const Tensor x = Tensor::randn({2, 33, 4, 16}, rng);  // (B, L, H, D)
  const Tensor q = transpose(x, 1, 2);                   // (B, H, L, D), strided
  AttentionOptions o;
  o.causal = true;
  const Tensor a = scaled_dot_product_attention(q, q, q, o);
  const Tensor b = scaled_dot_product_attention(q.contiguous(), q.contiguous(), q.contiguous(), o);
  EXPECT_LT(err(a, b), 1e-6);
  EXPECT_TRUE(transpose(a, 1, 2).is_contiguous());
}
