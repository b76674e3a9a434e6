// The attention entry point (checks, kernel choice, logging) and the reference kernel from
// primitives (see attention.hpp); the fused op is in attention_fused.cpp. Letters as there;
// G = H / Hkv query heads per K/V head, Bm the mask's batch (B when a key-padding mask is given,
// else 1).
// The masks become one additive constant (Bm, 1, Lq, Lk) of 0 / -inf; a row with no visible key
// gets 0 instead of -inf there (so its softmax stays finite) and its probabilities are multiplied
// by 0 afterwards, which gives the zero row without NaN in the forward or the backward.
#include "focus/ops/attention.hpp"
#include "focus/ops/attention_internal.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "focus/ops/dropout.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/softmax.hpp"
#include "focus/ops/view.hpp"
#include "focus/kernels/attention.hpp"

namespace focus {

namespace {

// The masks of `m` as an additive constant and, when some query row sees no key, a 0/1 row keep
// factor. Both undefined when nothing is masked.
struct MaskTensors {
  Tensor additive;  // (Bm, 1, Lq, Lk)
  Tensor row_keep;  // (Bm, 1, Lq, 1), undefined unless a row is fully masked
};

MaskTensors build_mask(const AttentionMask& m, int64_t B, int64_t Lq, int64_t Lk, DType dtype) {
  const bool lengths = m.key_lengths.defined(), padding = m.key_padding_mask.defined();
  const int64_t wl = m.window_left, wr = m.causal ? 0 : m.window_right;
  if (wl < 0 && wr < 0 && !lengths && !padding) return {};
  std::vector<int64_t> len;
  if (lengths) {
    len = m.key_lengths.to_vector<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      FOCUS_CHECK(len[b] >= 0 && len[b] <= Lk, ValueError,
                  "attention: key_lengths[{}] = {} is outside [0, {}]", b, len[b], Lk);
  }
  std::vector<double> pad;
  if (padding) pad = m.key_padding_mask.to_vector<double>();
  const int64_t Bm = (lengths || padding) ? B : 1;
  MaskTensors out;
  out.additive = Tensor::empty({Bm, 1, Lq, Lk}, dtype);  // (Bm, 1, Lq, Lk)
  Tensor keep = Tensor::empty({Bm, 1, Lq, 1}, dtype);    // (Bm, 1, Lq, 1)
  bool any_dead = false;
  dispatch_float(dtype, "attention mask", [&]<class T>() {
    T* pm = out.additive.data<T>();
    T* pk = keep.data<T>();
    const T ninf = -std::numeric_limits<T>::infinity();
    for (int64_t b = 0; b < Bm; ++b)
      for (int64_t i = 0; i < Lq; ++i) {
        T* row = pm + (b * Lq + i) * Lk;
        bool any_visible = false;
        for (int64_t j = 0; j < Lk; ++j) {
          const bool masked = (wr >= 0 && j > i + (Lk - Lq) + wr) ||
                              (wl >= 0 && j < i + (Lk - Lq) - wl) || (lengths && j >= len[b]) ||
                              (padding && pad[b * Lk + j] != 0.0);
          row[j] = masked ? ninf : T(0);
          any_visible |= !masked;
        }
        if (!any_visible)
          for (int64_t j = 0; j < Lk; ++j) row[j] = T(0);
        pk[b * Lq + i] = any_visible ? T(1) : T(0);
        any_dead |= !any_visible;
      }
  });
  if (any_dead) out.row_keep = keep;
  return out;
}

// (B, H, L, X) -> (B, Hkv, G, L, X): a view when t or its (B, L, H, X) transpose is packed (the
// layout a multi-head projection gives), a copy otherwise.
Tensor split_heads(const Tensor& t, int64_t Hkv, int64_t G) {
  const Shape& s = t.shape();
  if (!t.is_contiguous() && t.transpose(1, 2).is_contiguous())
    return permute(reshape(transpose(t, 1, 2), {s[0], s[2], Hkv, G, s[3]}), {0, 2, 3, 1, 4});
  return reshape(t, {s[0], Hkv, G, s[2], s[3]});
}

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
  FOCUS_CHECK(q.defined() && k.defined() && v.defined(), ValueError, "attention: undefined input");
  FOCUS_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, ShapeError,
              "attention: q {}, k {}, v {} must be 4-D (B, H, L, D)", to_string(q.shape()),
              to_string(k.shape()), to_string(v.shape()));
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), Lk = k.size(2);
  FOCUS_CHECK(k.size(0) == B && v.size(0) == B && k.size(3) == D && v.size(1) == Hkv &&
                  v.size(2) == Lk && Hkv > 0 && H % Hkv == 0 && Lk > 0,
              ShapeError,
              "attention: q {} (B, H, Lq, D), k {} (B, Hkv, Lk, D), v {} (B, Hkv, Lk, Dv) do not "
              "match (H % Hkv == 0, Lk > 0)",
              to_string(q.shape()), to_string(k.shape()), to_string(v.shape()));
  FOCUS_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), DTypeError,
              "attention: dtypes differ (q {}, k {}, v {})", dtype_name(q.dtype()),
              dtype_name(k.dtype()), dtype_name(v.dtype()));
  if (opt.key_lengths.defined())
    FOCUS_CHECK(
        opt.key_lengths.dim() == 1 && opt.key_lengths.size(0) == B &&
            (opt.key_lengths.dtype() == DType::I64 || opt.key_lengths.dtype() == DType::I32),
        ShapeError, "attention: key_lengths {} ({}) must be I64 or I32 (B = {})",
        to_string(opt.key_lengths.shape()), dtype_name(opt.key_lengths.dtype()), B);
  if (opt.key_padding_mask.defined())
    FOCUS_CHECK(opt.key_padding_mask.shape() == Shape({B, Lk}), ShapeError,
                "attention: key_padding_mask {} must be (B, Lk) = ({}, {})",
                to_string(opt.key_padding_mask.shape()), B, Lk);
  if (opt.bias.defined()) {
    const Shape full{B, H, q.size(2), Lk};
    FOCUS_CHECK(
        opt.bias.dim() <= 4 && broadcast_shapes(opt.bias.shape(), full, "attention bias") == full,
        ShapeError, "attention: bias {} does not broadcast to (B, H, Lq, Lk) = {}",
        to_string(opt.bias.shape()), to_string(full));
    FOCUS_CHECK(opt.bias.dtype() == q.dtype(), DTypeError, "attention: bias dtype {} vs q {}",
                dtype_name(opt.bias.dtype()), dtype_name(q.dtype()));
  }
  FOCUS_CHECK(opt.dropout_p >= 0.0 && opt.dropout_p < 1.0, ValueError,
              "attention: dropout_p {} outside [0, 1)", opt.dropout_p);
  FOCUS_CHECK(!(opt.training && opt.dropout_p > 0.0) || opt.rng != nullptr, ValueError,
              "attention: dropout_p {} in training needs an Rng", opt.dropout_p);
  FOCUS_CHECK(opt.window_left >= -1 && opt.window_right >= -1, ValueError,
              "attention: window_left {} / window_right {} must be >= 0 (or -1: unbounded)",
              opt.window_left, opt.window_right);
}

Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionOptions& opt, Tensor* weights_out);

AttentionKernel kernel_from_env() {
  const char* e = std::getenv("FOCUS_ATTENTION");
  return e && std::strcmp(e, "reference") == 0 ? AttentionKernel::Reference
                                               : AttentionKernel::Fused;
}
std::atomic<AttentionKernel> g_kernel{kernel_from_env()};
const bool g_log = [] {
  const char* e = std::getenv("FOCUS_ATTENTION_LOG");
  return e && *e && std::strcmp(e, "0") != 0;
}();
thread_local AttentionKernel t_last = AttentionKernel::Auto;

void log_call(AttentionKernel k, const Tensor& q, const Tensor& kk, const AttentionOptions& o) {
  fmt::print(stderr,
             "focus attention: {} [{}] {} q {} k {} causal {} window ({}, {}) lengths {} "
             "padding {} bias {} dropout {}\n",
             attention_kernel_name(k),
             k == AttentionKernel::Fused
                 ? attention_isa_name(q.dtype() == DType::F64 ? AttentionIsa::Scalar
                                                              : attention_isa())
                 : std::string("primitives"),
             dtype_name(q.dtype()), to_string(q.shape()), to_string(kk.shape()), o.causal,
             o.window_left, o.window_right, o.key_lengths.defined(),
             o.key_padding_mask.defined(), o.bias.defined(), o.training ? o.dropout_p : 0.0);
}

}  // namespace

void set_attention_kernel(AttentionKernel k) {
  g_kernel = k == AttentionKernel::Auto ? kernel_from_env() : k;
}
AttentionKernel attention_kernel() { return g_kernel.load(); }
AttentionKernel last_attention_kernel() { return t_last; }
std::string attention_kernel_name(AttentionKernel k) {
  switch (k) {
    case AttentionKernel::Fused: return "fused";
    case AttentionKernel::Reference: return "reference";
    default: return "auto";
  }
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt, Tensor* weights_out) {
  check_inputs(q, k, v, opt);
  const AttentionKernel kernel =
      opt.kernel == AttentionKernel::Auto ? attention_kernel() : opt.kernel;
  FOCUS_CHECK(kernel == AttentionKernel::Fused || (!opt.record && !opt.stats), ValueError,
              "attention: a record or statistics need the fused kernel (asked: {})",
              attention_kernel_name(kernel));
  t_last = kernel;
  if (g_log) log_call(kernel, q, k, opt);
  if (kernel == AttentionKernel::Reference) return reference_attention(q, k, v, opt, weights_out);
  return detail::fused_attention(q, k, v, opt, weights_out);
}

namespace {

Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionOptions& opt, Tensor* weights_out) {
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Lk = k.size(2), Dv = v.size(3), G = H / Hkv;
  const double scale = opt.scale.value_or(1.0 / std::sqrt(static_cast<double>(D)));
  // Scale q rather than the scores: fewer elements whenever Lk > D.
  const Tensor qs = scale == 1.0 ? q : mul(q, scale);  // (B, H, Lq, D)

  Tensor scores;  // (B, H, Lq, Lk)
  if (G == 1) {
    scores = matmul(qs, transpose(k, -1, -2));
  } else {  // each K/V head serves G query heads through a broadcast batch dim, no copy of K/V
    const Tensor kt = unsqueeze(transpose(k, -1, -2), 2);  // (B, Hkv, 1, D, Lk)
    scores = reshape(matmul(split_heads(qs, Hkv, G), kt), {B, H, Lq, Lk});
  }
  if (opt.bias.defined()) scores = add(scores, opt.bias);
  const MaskTensors mask = build_mask(opt, B, Lq, Lk, q.dtype());
  if (mask.additive.defined()) scores = add(scores, mask.additive);

  Tensor probs = softmax(scores, -1);  // (B, H, Lq, Lk)
  if (mask.row_keep.defined()) probs = mul(probs, mask.row_keep);
  if (weights_out) *weights_out = probs;
  if (opt.training && opt.dropout_p > 0.0) probs = dropout(probs, opt.dropout_p, true, *opt.rng);

  if (G == 1) return matmul(probs, v);                    // (B, H, Lq, Dv)
  const Tensor pg = reshape(probs, {B, Hkv, G, Lq, Lk});  // a view: probs is packed
  return reshape(matmul(pg, unsqueeze(v, 2)), {B, H, Lq, Dv});
}

}  // namespace

}  // namespace focus
