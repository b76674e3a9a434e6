// The fast inference path of text-transformer (see text_fast.hpp).
#include "focus/infer/text_fast.hpp"

#include <cmath>
#include <map>
#include <string>

#include "focus/kernels/attention.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/norm.hpp"
#include "focus/kernels/unary.hpp"
#include "focus/models/text_transformer.hpp"

namespace focus {

namespace {

constexpr double kNormEps = 1e-5;  // LayerNorm's default, which text-transformer uses

template <class V>
void grow(V& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

std::vector<float> stack(std::initializer_list<const Tensor*> parts) {
  std::vector<float> out;
  for (const Tensor* t : parts) {
    const Tensor c = t->contiguous();
    out.insert(out.end(), c.data<float>(), c.data<float>() + c.numel());
  }
  return out;
}

}  // namespace

std::unique_ptr<TextFastPath> TextFastPath::build(const TextTransformer& model) {
  const TextTransformerConfig& c = model.cfg();
  std::map<std::string, Tensor> p;
  for (const auto& [name, t] : model.named_parameters()) {
    if (t.dtype() != DType::F32) return nullptr;
    p[name] = t.contiguous();
  }
  const int64_t D = c.dim, F = std::lround(c.mlp_ratio * double(D));
  auto get = [&](const std::string& name, const Shape& shape) -> Tensor {
    auto it = p.find(name);
    if (it == p.end() || it->second.shape() != shape) return Tensor();
    return it->second;
  };
  std::unique_ptr<TextFastPath> f(new TextFastPath());
  f->V_ = c.vocab_size, f->Lmax_ = c.max_len, f->D_ = D, f->H_ = c.heads, f->F_ = F;
  f->K_ = c.num_classes;
  f->tok_ = get("tok_embed.weight", {c.vocab_size, D});
  f->pos_ = get("pos_embed.weight", {c.max_len, D});
  f->norm_w_ = get("norm.weight", {D});
  f->norm_b_ = get("norm.bias", {D});
  std::vector<Tensor> all = {f->tok_, f->pos_, f->norm_w_, f->norm_b_};
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    Block k;
    k.ln1_w = get(b + "norm1.weight", {D});
    k.ln1_b = get(b + "norm1.bias", {D});
    k.ln2_w = get(b + "norm2.weight", {D});
    k.ln2_b = get(b + "norm2.bias", {D});
    Tensor wq = get(b + "self_attn.q_proj.weight", {D, D}), bq = get(b + "self_attn.q_proj.bias", {D});
    Tensor wk = get(b + "self_attn.k_proj.weight", {D, D}), bk = get(b + "self_attn.k_proj.bias", {D});
    Tensor wv = get(b + "self_attn.v_proj.weight", {D, D}), bv = get(b + "self_attn.v_proj.bias", {D});
    k.wo = get(b + "self_attn.out_proj.weight", {D, D});
    k.bo = get(b + "self_attn.out_proj.bias", {D});
    k.w1 = get(b + "linear1.weight", {F, D});
    k.b1 = get(b + "linear1.bias", {F});
    k.w2 = get(b + "linear2.weight", {D, F});
    k.b2 = get(b + "linear2.bias", {D});
    for (const Tensor* t : {&k.ln1_w, &k.ln1_b, &k.ln2_w, &k.ln2_b, &wq, &bq, &wk, &bk, &wv, &bv,
                            &k.wo, &k.bo, &k.w1, &k.b1, &k.w2, &k.b2})
      if (!t->defined()) return nullptr;
    k.wqkv = stack({&wq, &wk, &wv});
    k.bqkv = stack({&bq, &bk, &bv});
    f->blocks_.push_back(std::move(k));
  }
  f->pool_query_ = get("pool.query", {1, 1, D});
  f->pool_wq_ = get("pool.attn.q_proj.weight", {D, D});
  f->pool_bq_ = get("pool.attn.q_proj.bias", {D});
  Tensor wk = get("pool.attn.k_proj.weight", {D, D}), bk = get("pool.attn.k_proj.bias", {D});
  Tensor wv = get("pool.attn.v_proj.weight", {D, D}), bv = get("pool.attn.v_proj.bias", {D});
  f->pool_wo_ = get("pool.attn.out_proj.weight", {D, D});
  f->pool_bo_ = get("pool.attn.out_proj.bias", {D});
  f->head_w_ = get("head.weight", {c.num_classes, D});
  f->head_b_ = get("head.bias", {c.num_classes});
  for (const Tensor& t : {f->pool_query_, f->pool_wq_, f->pool_bq_, wk, bk, wv, bv, f->pool_wo_,
                          f->pool_bo_, f->head_w_, f->head_b_})
    all.push_back(t);
  for (const Tensor& t : all)
    if (!t.defined()) return nullptr;
  f->pool_wkv_ = stack({&wk, &wv});
  f->pool_bkv_ = stack({&bk, &bv});
  if (c.ngram_buckets > 0) {
    // The table (a parameter, or data with ngram_fit) times the NB ratios when on, once here
    // (the reference multiplies per slot).
    f->ngram_ = model.ngram_effective_table().to(DType::F32).contiguous();
    f->ngram_order_ = c.ngram_order;
    f->ngram_scale_ = c.ngram_scale;
    f->ngram_boundary_ = c.ngram_boundary;
    if (c.ngram_idf) {
      const Tensor idf = model.ngram_idf().to(DType::F32).contiguous();  // (B)
      f->ngram_idf_.assign(idf.data<float>(), idf.data<float>() + idf.numel());
    }
  }
  f->Lin_ = c.input_len();
  return f;
}

Tensor TextFastPath::logits(const Tensor& ids, Tensor* pooling) const {
  FOCUS_CHECK(ids.dim() == 2 && ids.dtype() == DType::I64, ShapeError,
              "text_transformer: input {} {} must be (N, L) I64 token ids", to_string(ids.shape()),
              dtype_name(ids.dtype()));
  const int64_t N = ids.size(0), Lall = ids.size(1);
  FOCUS_CHECK(Lall >= 1 && Lall <= Lin_, ShapeError,
              "text_transformer: {} tokens per row; the model takes 1 to {} = {}", Lall,
              Lin_ > Lmax_ ? "ngram_len" : "max_len", Lin_);
  FOCUS_CHECK(N >= 1, ShapeError, "text_transformer: no rows");
  const Tensor all = ids.contiguous();
  const int64_t* all_ids = all.data<int64_t>();
  check_token_ids(all_ids, N, Lall, V_, Lmax_, "text_transformer");  // the model's checks
  // The encoder reads the first max_len ids of each row; the n-gram branch all of them.
  const Tensor idc = Lall > Lmax_ ? all.slice(1, 0, Lmax_).contiguous() : all;  // (N, L)
  const int64_t L = idc.size(1), D = D_, H = H_, Dh = D_ / H_, F = F_, R = N * L;
  const int64_t* id = idc.data<int64_t>();
  std::lock_guard<std::mutex> lock(mu_);
  grow(pad_, size_t(R));
  for (int64_t r = 0; r < R; ++r) pad_[size_t(r)] = id[r] == 0;
  for (auto* v : {&h_, &t_, &o_}) grow(*v, size_t(R * D));
  grow(qkv_, size_t(R * 3 * D));
  grow(f_, size_t(R * F));
  grow(g_, size_t(R * F));
  grow(mean_, size_t(R));
  grow(rstd_, size_t(R));
  grow(lse_, size_t(N * H * L));
  grow(q1_, size_t(D));
  grow(pooled_, size_t(N * D));
  grow(pooled2_, size_t(N * D));
  float *h = h_.data(), *t = t_.data(), *qkv = qkv_.data(), *o = o_.data();
  // Embedding + positions.
  const float *tok = tok_.data<float>(), *pos = pos_.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t l = 0; l < L; ++l) {
      const float* e = tok + id[n * L + l] * D;
      const float* q = pos + l * D;
      float* y = h + (n * L + l) * D;
      for (int64_t d = 0; d < D; ++d) y[d] = e[d] + q[d];
    }
  AttnProblem<float> ap;
  ap.B = N, ap.H = H, ap.Hkv = H, ap.Lq = L, ap.Lk = L, ap.D = Dh, ap.Dv = Dh;
  ap.scale = 1.0 / std::sqrt(double(Dh));
  ap.key_padding = pad_.data();
  const AttnLayout qkv_stride{L * 3 * D, Dh, 3 * D}, o_stride{L * D, Dh, D};
  for (const Block& k : blocks_) {
    layer_norm_forward<float>(t, mean_.data(), rstd_.data(), h, k.ln1_w.data<float>(),
                              k.ln1_b.data<float>(), R, D, kNormEps);
    linear_rows(t, R, D, k.wqkv.data(), k.bqkv.data(), 3 * D, qkv, false);  // (N, L, 3D)
    ap.q = qkv, ap.k = qkv + D, ap.v = qkv + 2 * D;
    ap.q_stride = ap.k_stride = ap.v_stride = qkv_stride;
    attention_forward<float>(ap, o, o_stride, nullptr);  // (N, L, H, Dh); no LSE wanted
    linear_rows(o, R, D, k.wo.data<float>(), k.bo.data<float>(), D, h, true);
    layer_norm_forward<float>(t, mean_.data(), rstd_.data(), h, k.ln2_w.data<float>(),
                              k.ln2_b.data<float>(), R, D, kNormEps);
    linear_rows(t, R, D, k.w1.data<float>(), k.b1.data<float>(), F, f_.data(), false);  // (R, F)
    unary_forward<float>(UnaryOp::Gelu, g_.data(), f_.data(), R * F, 0.0);
    linear_rows(g_.data(), R, F, k.w2.data<float>(), k.b2.data<float>(), D, h, true);
  }
  layer_norm_forward<float>(t, mean_.data(), rstd_.data(), h, norm_w_.data<float>(),
                            norm_b_.data<float>(), R, D, kNormEps);
  // Pooling: one learned query over the tokens.
  linear_rows(pool_query_.data<float>(), 1, D, pool_wq_.data<float>(), pool_bq_.data<float>(), D,
         q1_.data(), false);                                                      // (1, D)
  linear_rows(t, R, D, pool_wkv_.data(), pool_bkv_.data(), 2 * D, qkv, false);  // (N, L, 2D)
  AttnProblem<float> pp = ap;
  pp.Lq = 1;
  pp.q = q1_.data(), pp.k = qkv, pp.v = qkv + D;
  pp.q_stride = AttnLayout{0, Dh, D};
  pp.k_stride = pp.v_stride = AttnLayout{L * 2 * D, Dh, 2 * D};
  attention_forward<float>(pp, pooled_.data(), AttnLayout{D, Dh, D}, lse_.data());  // (N, 1, H, Dh)
  if (pooling) {
    *pooling = Tensor::zeros({N, L});  // (N, L)
    float* w = pooling->data<float>();
    grow(probs_, size_t(L));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t hh = 0; hh < H; ++hh) {
        attention_probs<float>(pp, lse_.data(), n, hh, 0, 1, probs_.data(), L);  // (1, L)
        for (int64_t l = 0; l < L; ++l) w[n * L + l] += probs_[size_t(l)] / float(H);
      }
  }
  linear_rows(pooled_.data(), N, D, pool_wo_.data<float>(), pool_bo_.data<float>(), D, pooled2_.data(),
         false);  // (N, D)
  Tensor z = Tensor::empty({N, K_});  // (N, K)
  linear_rows(pooled2_.data(), N, D, head_w_.data<float>(), head_b_.data<float>(), K_, z.data<float>(),
         false);
  if (ngram_.defined()) {  // the n-gram branch: sum of weight * table row, in double, per row
    const int64_t S = Lall * ngram_order_;
    grow(ngram_bucket_, size_t(N * S));
    grow(ngram_weight_, size_t(N * S));
    text_ngram_features(all_ids, N, Lall, ngram_order_, ngram_.size(0),
                        ngram_bucket_.data(), ngram_weight_.data(),
                        ngram_idf_.empty() ? nullptr : ngram_idf_.data(), ngram_boundary_);
    const float* table = ngram_.data<float>();
    float* zp = z.data<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K_; ++k) {
        double acc = 0;
        for (int64_t s = 0; s < S; ++s) {
          const double w = ngram_weight_[size_t(n * S + s)];
          if (w != 0) acc += w * table[ngram_bucket_[size_t(n * S + s)] * K_ + k];
        }
        zp[n * K_ + k] += float(acc * ngram_scale_);
      }
  }
  return z;
}

}  // namespace focus
