// MultiHeadAttention and AttentionPooling (see attention.hpp).
#include "focus/nn/attention.hpp"

#include "focus/nn/init.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/view.hpp"

namespace focus {

namespace {

MultiHeadAttentionOptions checked(MultiHeadAttentionOptions o) {
  init::positive(o.d_model, "MultiHeadAttention: d_model");
  init::positive(o.n_heads, "MultiHeadAttention: n_heads");
  if (o.n_kv_heads == 0) o.n_kv_heads = o.n_heads;
  FOCUS_CHECK(o.head_dim > 0 || o.d_model % o.n_heads == 0, ValueError,
              "MultiHeadAttention: d_model {} is not divisible by n_heads {}", o.d_model,
              o.n_heads);
  FOCUS_CHECK(o.head_dim >= 0, ValueError, "MultiHeadAttention: head_dim {} is negative",
              o.head_dim);
  if (o.head_dim == 0) o.head_dim = o.d_model / o.n_heads;
  FOCUS_CHECK(o.n_kv_heads > 0 && o.n_heads % o.n_kv_heads == 0, ValueError,
              "MultiHeadAttention: n_heads {} is not a multiple of n_kv_heads {}", o.n_heads,
              o.n_kv_heads);
  FOCUS_CHECK(o.dropout >= 0.0 && o.dropout < 1.0, ValueError,
              "MultiHeadAttention: dropout {} outside [0, 1)", o.dropout);
  return o;
}

// A Linear with Xavier-uniform weight and zero bias (torch's in_proj init).
std::shared_ptr<Linear> projection(int64_t in, int64_t out, bool bias, Rng& rng) {
  auto l = std::make_shared<Linear>(in, out, rng, bias);
  Tensor w = l->weight;
  w.copy_(init::uniform(w.shape(), init::xavier_bound(in, out), rng));
  if (bias) {
    Tensor b = l->bias;
    b.zero_();
  }
  return l;
}

// (B, L, heads * Dh) -> (B, heads, L, Dh), a view.
Tensor to_heads(const Tensor& x, int64_t heads) {
  const int64_t B = x.size(0), L = x.size(1), Dh = x.size(2) / heads;
  return transpose(reshape(x, {B, L, heads, Dh}), 1, 2);
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(const MultiHeadAttentionOptions& o, Rng& rng)
    : opt_(checked(o)),
      q_proj(projection(opt_.d_model, opt_.n_heads * opt_.head_dim, opt_.bias, rng)),
      k_proj(projection(opt_.d_model, opt_.n_kv_heads * opt_.head_dim, opt_.bias, rng)),
      v_proj(projection(opt_.d_model, k_proj->out_features(), opt_.bias, rng)),
      out_proj(std::make_shared<Linear>(q_proj->out_features(), opt_.d_model, rng, opt_.bias)),
      rng_(rng.next_u64()) {
  if (opt_.bias) {
    Tensor b = out_proj->bias;
    b.zero_();
  }
  register_rng("rng", &rng_);
  register_module("q_proj", q_proj);
  register_module("k_proj", k_proj);
  register_module("v_proj", v_proj);
  register_module("out_proj", out_proj);
}

Tensor MultiHeadAttention::forward(const Tensor& query, const Tensor& key_value,
                                   const AttentionMask& mask, Tensor* weights_out) {
  const Tensor& kv = key_value.defined() ? key_value : query;
  const int64_t E = opt_.d_model;
  FOCUS_CHECK(query.dim() == 3 && kv.dim() == 3 && query.size(2) == E && kv.size(2) == E &&
                  kv.size(0) == query.size(0),
              ShapeError,
              "MultiHeadAttention: query {} (B, Lq, E) and key_value {} (B, Lk, E), E = {}",
              to_string(query.shape()), to_string(kv.shape()), E);
  const Tensor q = to_heads(q_proj->forward(query), opt_.n_heads);  // (B, H, Lq, Dh)
  const Tensor k = to_heads(k_proj->forward(kv), opt_.n_kv_heads);  // (B, Hkv, Lk, Dh)
  const Tensor v = to_heads(v_proj->forward(kv), opt_.n_kv_heads);  // (B, Hkv, Lk, Dh)
  return attend(q, k, v, mask, weights_out);
}

Tensor MultiHeadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const AttentionMask& mask, Tensor* weights_out) {
  const int64_t B = q.size(0), Lq = q.size(2);
  AttentionOptions ao;
  static_cast<AttentionMask&>(ao) = mask;
  ao.dropout_p = opt_.dropout;
  ao.training = is_training();
  ao.rng = &rng_;
  Tensor o = scaled_dot_product_attention(q, k, v, ao, weights_out);  // (B, H, Lq, Dh)
  if (gate_.defined()) o = mul(o, reshape(gate_, {1, opt_.n_heads, 1, 1}));
  return out_proj->forward(reshape(transpose(o, 1, 2), {B, Lq, opt_.n_heads * opt_.head_dim}));
}

void MultiHeadAttention::set_head_gate(const Tensor& gate) {
  FOCUS_CHECK(!gate.defined() || (gate.dim() == 1 && gate.size(0) == opt_.n_heads), ShapeError,
              "MultiHeadAttention::set_head_gate: gate {} must be ({}) (one per head)",
              gate.defined() ? to_string(gate.shape()) : std::string("undefined"), opt_.n_heads);
  gate_ = gate;
}

// ---- incremental decoding ----------------------------------------------------------------------

KvCache MultiHeadAttention::make_cache(int64_t batch, int64_t capacity) const {
  return KvCache(batch, opt_.n_kv_heads, opt_.head_dim, capacity,
                 q_proj->weight.dtype());
}

void MultiHeadAttention::check_query(const Tensor& query, int64_t batch, const char* where) const {
  FOCUS_CHECK(query.defined() && query.dim() == 3 && query.size(2) == opt_.d_model &&
                  query.size(0) == batch && query.size(1) >= 1,
              ShapeError, "MultiHeadAttention::{}: query {} must be (B, T, E) = ({}, T, {})", where,
              query.defined() ? to_string(query.shape()) : std::string("undefined"), batch,
              opt_.d_model);
  FOCUS_CHECK(!(is_training() && opt_.dropout > 0.0), StateError,
              "MultiHeadAttention::{}: decoding applies no dropout; call eval() (dropout {})",
              where, opt_.dropout);
}

Tensor MultiHeadAttention::forward_cached(const Tensor& query, KvCache& cache,
                                          const Tensor& counts) {
  check_query(query, cache.batch(), "forward_cached");
  FOCUS_CHECK(
      cache.kv_heads() == opt_.n_kv_heads && cache.head_dim() == opt_.head_dim,
      ShapeError, "MultiHeadAttention::forward_cached: cache of {} heads x {} vs layer {} x {}",
      cache.kv_heads(), cache.head_dim(), opt_.n_kv_heads, opt_.head_dim);
  const Tensor q = to_heads(q_proj->forward(query), opt_.n_heads);  // (B, H, T, Dh)
  const KvStep step = cache.append(to_heads(k_proj->forward(query), opt_.n_kv_heads),
                                   to_heads(v_proj->forward(query), opt_.n_kv_heads), counts);
  return attend(q, step.k, step.v, step.mask, nullptr);  // step.k/v (B, Hkv, Lk, Dh) views
}

void MultiHeadAttention::cache_memory(const Tensor& memory, CrossKvCache& cache,
                                      const AttentionMask& memory_mask) {
  FOCUS_CHECK(memory.defined() && memory.dim() == 3 && memory.size(2) == opt_.d_model &&
                  memory.size(1) >= 1,
              ShapeError, "MultiHeadAttention::cache_memory: memory {} must be (B, S >= 1, {})",
              memory.defined() ? to_string(memory.shape()) : std::string("undefined"),
              opt_.d_model);
  cache.set(to_heads(k_proj->forward(memory), opt_.n_kv_heads),  // (B, Hkv, S, Dh) views
            to_heads(v_proj->forward(memory), opt_.n_kv_heads), memory_mask);
}

Tensor MultiHeadAttention::forward_cross_cached(const Tensor& query, const CrossKvCache& cache) {
  const Tensor& k = cache.keys();  // (B, Hkv, S, Dh)
  check_query(query, k.size(0), "forward_cross_cached");
  FOCUS_CHECK(k.size(1) == opt_.n_kv_heads && k.size(3) == opt_.head_dim, ShapeError,
              "MultiHeadAttention::forward_cross_cached: cached keys {} vs layer {} heads x {}",
              to_string(k.shape()), opt_.n_kv_heads, opt_.head_dim);
  const Tensor q = to_heads(q_proj->forward(query), opt_.n_heads);  // (B, H, T, Dh)
  return attend(q, k, cache.values(), cache.mask(), nullptr);
}

AttentionPooling::AttentionPooling(const MultiHeadAttentionOptions& o, Rng& rng)
    : query(register_parameter(
          "query",
          init::normal({1, 1, init::positive(o.d_model, "AttentionPooling: d_model")}, 0.02, rng))),
      attn(register_module("attn", std::make_shared<MultiHeadAttention>(o, rng))) {}

Tensor AttentionPooling::forward(const Tensor& x, const AttentionMask& mask, Tensor* weights_out) {
  FOCUS_CHECK(x.dim() == 3 && x.size(2) == query.size(2), ShapeError,
              "AttentionPooling: input {} must be (B, L, {})", to_string(x.shape()), query.size(2));
  const int64_t B = x.size(0), E = x.size(2);
  const Tensor q = expand(query, {B, 1, E});                  // (B, 1, E)
  return squeeze(attn->forward(q, x, mask, weights_out), 1);  // (B, E)
}

}  // namespace focus
