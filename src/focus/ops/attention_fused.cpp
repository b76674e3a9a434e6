// The fused attention op (see attention.hpp): builds the kernel problem from tensors, runs the
// flash-style forward of kernels/attention.hpp, keeps what its backward needs (q, k, v, the output,
// the row log-sum-exp and the masks; never the probabilities), and recomputes exact maps and
// per-head statistics from a record.
//   Letters: B batch, H query heads, Hkv K/V heads, Lq queries, Lk keys, D q/k head dim, Dv value
//   head dim.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "focus/autograd/node.hpp"
#include "focus/kernels/attention.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/dropout.hpp"
#include "focus/ops/attention.hpp"
#include "focus/ops/attention_internal.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

// The masks in the kernel's form, owned: the node outlives the caller's tensors.
struct MaskData {
  std::vector<int64_t> lengths;  // (B) or empty
  std::vector<uint8_t> padding;  // (B, Lk) or empty
  int64_t window_left = -1, window_right = -1;
  Tensor bias;  // (B, H, Lq, Lk) broadcast view of the caller's bias, or undefined
};

MaskData mask_data(const AttentionMask& m, int64_t B, int64_t H, int64_t Lq, int64_t Lk) {
  MaskData d;
  if (m.key_lengths.defined()) {
    d.lengths = m.key_lengths.to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      FOCUS_CHECK(d.lengths[b] >= 0 && d.lengths[b] <= Lk, ValueError,
                  "attention: key_lengths[{}] = {} is outside [0, {}]", b, d.lengths[b], Lk);
  }
  if (m.key_padding_mask.defined()) {
    const std::vector<double> pad = m.key_padding_mask.to_vector<double>();
    d.padding.resize(pad.size());
    for (size_t i = 0; i < pad.size(); ++i) d.padding[i] = pad[i] != 0.0;
  }
  d.window_left = m.window_left;
  d.window_right = m.causal ? 0 : m.window_right;
  if (m.bias.defined()) d.bias = m.bias.detach().expand({B, H, Lq, Lk});
  return d;
}

// t itself when its last dim is contiguous (any other layout the kernel reads), else a copy.
Tensor last_dim_packed(const Tensor& t) { return t.strides()[3] == 1 ? t : t.contiguous(); }
AttnLayout layout(const Tensor& t) { return {t.strides()[0], t.strides()[1], t.strides()[2]}; }

// Zeros (B, X, L, Y) laid out as x: a transposed view of a packed (B, L, X, Y) buffer when x is
// one (the layout of projected heads), else packed.
Tensor zeros_like_layout(const Tensor& x) {
  const Shape& s = x.shape();
  if (!x.is_contiguous() && x.transpose(1, 2).is_contiguous())
    return Tensor::zeros({s[0], s[2], s[1], s[3]}, x.dtype()).transpose(1, 2);
  return Tensor::zeros(s, x.dtype());
}

template <class T>
AttnProblem<T> make_problem(const Tensor& q, const Tensor& k, const Tensor& v, const MaskData& m,
                            double scale) {
  AttnProblem<T> p;
  p.B = q.size(0);
  p.H = q.size(1);
  p.Lq = q.size(2);
  p.D = q.size(3);
  p.Hkv = k.size(1);
  p.Lk = k.size(2);
  p.Dv = v.size(3);
  p.q = q.data<T>();
  p.k = k.data<T>();
  p.v = v.data<T>();
  p.q_stride = layout(q);
  p.k_stride = layout(k);
  p.v_stride = layout(v);
  p.scale = scale;
  p.window_left = m.window_left;
  p.window_right = m.window_right;
  p.key_lengths = m.lengths.empty() ? nullptr : m.lengths.data();
  p.key_padding = m.padding.empty() ? nullptr : m.padding.data();
  if (m.bias.defined()) {
    p.bias = m.bias.data<T>();
    for (int i = 0; i < 4; ++i) p.bias_stride[i] = m.bias.strides()[i];
  }
  return p;
}

struct FusedAttentionNode : Node {
  Tensor q, k, v, o, lse;  // detached; o (B, H, Lq, Dv) view
  MaskData mask;
  Shape bias_shape;
  double scale = 1.0, dropout_p = 0.0;
  uint64_t seed = 0, offset = 0;

  const char* name() const override { return "FusedAttentionBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor dc = last_dim_packed(dout);
    Tensor dq = zeros_like_layout(q), dk = zeros_like_layout(k), dv = zeros_like_layout(v);
    Tensor dbias;  // (B, H, Lq, Lk), only when the bias needs a gradient
    if (needs_grad(3))
      dbias = Tensor::empty({q.size(0), q.size(1), q.size(2), k.size(2)}, q.dtype());
    dispatch_float(q.dtype(), "attention backward", [&]<class T>() {
      AttnProblem<T> p = make_problem<T>(q, k, v, mask, scale);
      p.dropout_p = dropout_p;
      p.seed = seed;
      p.offset = offset;
      attention_backward<T>(p, o.data<T>(), layout(o), dc.data<T>(), layout(dc), lse.data<T>(),
                            dq.data<T>(), layout(dq), dk.data<T>(), layout(dk), dv.data<T>(),
                            layout(dv), dbias.defined() ? dbias.data<T>() : nullptr);
    });
    return {needs_grad(0) ? dq : Tensor(), needs_grad(1) ? dk : Tensor(),
            needs_grad(2) ? dv : Tensor(), dbias.defined() ? sum_to(dbias, bias_shape) : Tensor()};
  }
  void release() override { q = k = v = o = lse = mask.bias = Tensor(); }
};

}  // namespace

namespace detail {

Tensor fused_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                       const AttentionOptions& opt, Tensor* weights_out) {
  const Tensor q = last_dim_packed(q_in), k = last_dim_packed(k_in), v = last_dim_packed(v_in);
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Lk = k.size(2), Dv = v.size(3);
  const double scale = opt.scale.value_or(1.0 / std::sqrt(static_cast<double>(D)));
  MaskData mask = mask_data(opt, B, H, Lq, Lk);

  Tensor o = Tensor::empty({B, Lq, H, Dv}, q.dtype()).transpose(1, 2);  // (B, H, Lq, Dv) view
  Tensor lse = Tensor::empty({B, H, Lq}, q.dtype());                     // (B, H, Lq)
  const bool drop = opt.training && opt.dropout_p > 0.0;
  uint64_t seed = 0, offset = 0;
  if (drop) {  // the counters the reference's dropout over (B, H, Lq, Lk) would take
    const CounterDraw c = reserve_counters(*opt.rng, dropout_counters(B * H * Lq * Lk));
    seed = c.seed;
    offset = c.offset;
  }
  dispatch_float(q.dtype(), "attention", [&]<class T>() {
    AttnProblem<T> p = make_problem<T>(q, k, v, mask, scale);
    if (drop) {
      p.dropout_p = opt.dropout_p;
      p.seed = seed;
      p.offset = offset;
    }
    attention_forward<T>(p, o.data<T>(), layout(o), lse.data<T>());
  });

  if (opt.record || opt.stats || weights_out) {
    AttentionRecord rec{q.detach(), k.detach(), lse, opt, scale};
    rec.mask.bias = opt.bias.defined() ? opt.bias.detach() : Tensor();
    if (weights_out) *weights_out = attention_probabilities(rec);
    if (opt.stats) *opt.stats = attention_statistics(rec, opt.stats_top_k);
    if (opt.record) *opt.record = std::move(rec);
  }

  if (needs_graph({&q_in, &k_in, &v_in, &opt.bias})) {
    auto n = std::make_shared<FusedAttentionNode>();
    n->q = q.detach();
    n->k = k.detach();
    n->v = v.detach();
    n->o = o.detach();
    n->lse = lse;
    n->mask = std::move(mask);
    if (opt.bias.defined()) n->bias_shape = opt.bias.shape();
    n->scale = scale;
    n->dropout_p = drop ? opt.dropout_p : 0.0;
    n->seed = seed;
    n->offset = offset;
    attach(o, n, {&q_in, &k_in, &v_in, opt.bias.defined() ? &opt.bias : nullptr});
  }
  return o;
}

}  // namespace detail

// ---- maps on demand ------------------------------------------------------------------------

namespace {

void check_record(const AttentionRecord& r) {
  FOCUS_CHECK(r.q.defined() && r.k.defined() && r.lse.defined(), ValueError,
              "attention record: empty (pass AttentionOptions::record to a fused forward)");
  FOCUS_CHECK(r.lse.shape() == Shape({r.q.size(0), r.q.size(1), r.q.size(2)}), ShapeError,
              "attention record: lse {} does not match q {}", to_string(r.lse.shape()),
              to_string(r.q.shape()));
}

// Runs fn(problem) with the record's kernel problem (v is not read: k stands in for it).
template <class Fn>
void with_problem(const AttentionRecord& r, Fn&& fn) {
  const MaskData m = mask_data(r.mask, r.q.size(0), r.q.size(1), r.q.size(2), r.k.size(2));
  dispatch_float(r.q.dtype(), "attention maps", [&]<class T>() {
    fn(make_problem<T>(r.q, r.k, r.k, m, r.scale), r.lse.data<T>());
  });
}

}  // namespace

Tensor attention_probabilities(const AttentionRecord& r, int64_t row_begin, int64_t row_end,
                               const std::vector<int64_t>& heads) {
  check_record(r);
  const int64_t B = r.q.size(0), H = r.q.size(1), Lq = r.q.size(2), Lk = r.k.size(2);
  if (row_end < 0) row_end = Lq;
  FOCUS_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= Lq, ValueError,
              "attention_probabilities: rows [{}, {}) outside [0, {})", row_begin, row_end, Lq);
  std::vector<int64_t> hs = heads;
  if (hs.empty()) {
    hs.resize(H);
    std::iota(hs.begin(), hs.end(), 0);
  }
  for (int64_t h : hs)
    FOCUS_CHECK(h >= 0 && h < H, ValueError, "attention_probabilities: head {} outside [0, {})",
                h, H);
  const int64_t nh = static_cast<int64_t>(hs.size()), rows = row_end - row_begin;
  Tensor out = Tensor::empty({B, nh, rows, Lk}, r.q.dtype());  // (B, nh, rows, Lk)
  with_problem(r, [&]<class T>(const AttnProblem<T>& p, const T* lse) {
    T* po = out.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t x = 0; x < nh; ++x)
        attention_probs<T>(p, lse, b, hs[x], row_begin, rows, po + (b * nh + x) * rows * Lk, Lk);
  });
  return out;
}

void for_each_attention_block(
    const AttentionRecord& r, int64_t block_rows,
    const std::function<void(int64_t, int64_t, int64_t, const Tensor&)>& fn) {
  check_record(r);
  FOCUS_CHECK(block_rows > 0, ValueError, "for_each_attention_block: block_rows {} <= 0",
              block_rows);
  const int64_t B = r.q.size(0), H = r.q.size(1), Lq = r.q.size(2), Lk = r.k.size(2);
  with_problem(r, [&]<class T>(const AttnProblem<T>& p, const T* lse) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i0 = 0; i0 < Lq; i0 += block_rows) {
          const int64_t rows = std::min(block_rows, Lq - i0);
          Tensor blk = Tensor::empty({rows, Lk}, r.q.dtype());  // (rows, Lk)
          attention_probs<T>(p, lse, b, h, i0, rows, blk.data<T>(), Lk);
          fn(b, h, i0, blk);
        }
  });
}

AttentionStats attention_statistics(const AttentionRecord& r, int64_t top_k) {
  check_record(r);
  const int64_t B = r.q.size(0), H = r.q.size(1), Lq = r.q.size(2), Lk = r.k.size(2);
  FOCUS_CHECK(top_k >= 0 && top_k <= Lk, ValueError,
              "attention_statistics: top_k {} outside [0, Lk = {}]", top_k, Lk);
  AttentionStats s;
  s.received = Tensor::zeros({B, H, Lk}, r.q.dtype());            // (B, H, Lk)
  s.entropy = Tensor::empty({B, H, Lq}, r.q.dtype());             // (B, H, Lq)
  s.topk_index = Tensor::empty({B, H, Lq, top_k}, DType::I64);    // (B, H, Lq, k)
  s.topk_weight = Tensor::empty({B, H, Lq, top_k}, r.q.dtype());  // (B, H, Lq, k)
  constexpr int64_t kRows = 64;
  with_problem(r, [&]<class T>(const AttnProblem<T>& p, const T* lse) {
    T* rec = s.received.data<T>();
    T* ent = s.entropy.data<T>();
    int64_t* ti = s.topk_index.data<int64_t>();
    T* tw = s.topk_weight.data<T>();
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads()) if (B * H > 1)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      std::vector<T> blk(static_cast<size_t>(kRows * Lk));
      std::vector<int64_t> order(static_cast<size_t>(Lk));
      for (int64_t i0 = 0; i0 < Lq; i0 += kRows) {
        const int64_t rows = std::min(kRows, Lq - i0);
        attention_probs<T>(p, lse, b, h, i0, rows, blk.data(), Lk);
        for (int64_t r0 = 0; r0 < rows; ++r0) {
          const T* pr = blk.data() + r0 * Lk;
          const int64_t row = bh * Lq + i0 + r0;
          T e = 0;
          for (int64_t j = 0; j < Lk; ++j) {
            rec[bh * Lk + j] += pr[j];
            if (pr[j] > 0) e -= pr[j] * std::log(pr[j]);
          }
          ent[row] = e;
          std::iota(order.begin(), order.end(), 0);
          std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                            [&](int64_t a, int64_t c) { return pr[a] > pr[c] || (pr[a] == pr[c] && a < c); });
          for (int64_t t = 0; t < top_k; ++t) {
            ti[row * top_k + t] = order[t];
            tw[row * top_k + t] = pr[order[t]];
          }
        }
      }
    }
  });
  return s;
}

}  // namespace focus
