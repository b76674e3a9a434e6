// text-transformer model (see text_transformer.hpp).
#include "focus/models/text_transformer.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/models/config_reader.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"

namespace focus {

TextTransformerConfig TextTransformerConfig::from_json(const nlohmann::json& j) {
  models::ConfigReader r(j, "text_transformer");
  TextTransformerConfig c;
  c.vocab_size = r.get("vocab_size", c.vocab_size);
  c.max_len = r.get("max_len", c.max_len);
  c.num_classes = r.get("num_classes", c.num_classes);
  c.dim = r.get("dim", c.dim);
  c.depth = r.get("depth", c.depth);
  c.heads = r.get("heads", c.heads);
  c.mlp_ratio = r.get("mlp_ratio", c.mlp_ratio);
  c.dropout = r.get("dropout", c.dropout);
  c.attn_dropout = r.get("attn_dropout", c.attn_dropout);
  c.ngram_buckets = r.get("ngram_buckets", c.ngram_buckets);
  c.ngram_order = r.get("ngram_order", c.ngram_order);
  c.ngram_scale = r.get("ngram_scale", c.ngram_scale);
  c.ngram_nb = r.get("ngram_nb", c.ngram_nb);
  c.ngram_idf = r.get("ngram_idf", c.ngram_idf);
  c.ngram_len = r.get("ngram_len", c.ngram_len);
  c.ngram_fit = r.get("ngram_fit", c.ngram_fit);
  c.ngram_fit_loss = r.get("ngram_fit_loss", c.ngram_fit_loss);
  c.ngram_boundary = r.get("ngram_boundary", c.ngram_boundary);
  r.finish();
  const std::pair<const char*, int64_t> sizes[] = {{"vocab_size", c.vocab_size},
                                                   {"max_len", c.max_len},
                                                   {"num_classes", c.num_classes},
                                                   {"dim", c.dim},
                                                   {"heads", c.heads}};
  for (const auto& [key, value] : sizes) r.require(value > 0, key, "must be positive");
  r.require(c.depth >= 0, "depth", "must be >= 0");
  r.require(c.dim % c.heads == 0, "heads", fmt::format("{} must divide dim {}", c.heads, c.dim));
  r.require(c.mlp_ratio > 0.0 && std::lround(c.mlp_ratio * c.dim) > 0, "mlp_ratio",
            "must be positive");
  r.require(c.dropout >= 0.0 && c.dropout < 1.0, "dropout", "must be in [0, 1)");
  r.require(c.attn_dropout >= 0.0 && c.attn_dropout < 1.0, "attn_dropout", "must be in [0, 1)");
  r.require(c.ngram_buckets >= 0, "ngram_buckets", "must be >= 0 (0: no n-gram branch)");
  r.require(c.ngram_order >= 1 && c.ngram_order <= 6, "ngram_order", "must be in [1, 6]");
  r.require(c.ngram_buckets <= INT32_MAX, "ngram_buckets", "must be < 2^31");
  r.require(c.ngram_scale > 0 && std::isfinite(c.ngram_scale), "ngram_scale", "must be positive");
  r.require(c.ngram_nb >= 0 && std::isfinite(c.ngram_nb), "ngram_nb", "must be >= 0 (0: off)");
  r.require(c.ngram_nb == 0 || c.ngram_buckets > 0, "ngram_nb",
            "needs the n-gram branch (ngram_buckets > 0)");
  r.require(!c.ngram_idf || c.ngram_buckets > 0, "ngram_idf",
            "needs the n-gram branch (ngram_buckets > 0)");
  r.require(c.ngram_len == 0 || (c.ngram_buckets > 0 && c.ngram_len >= c.max_len), "ngram_len",
            fmt::format("must be 0 or >= max_len {}, with the n-gram branch", c.max_len));
  r.require(c.ngram_fit >= 0 && std::isfinite(c.ngram_fit) && (c.ngram_fit == 0 || c.ngram_buckets > 0),
            "ngram_fit", "must be >= 0 (0: off; > 0 needs the n-gram branch)");
  r.require(c.ngram_fit_loss == "logistic" || c.ngram_fit_loss == "squared_hinge", "ngram_fit_loss",
            "must be logistic or squared_hinge");
  r.require(c.ngram_boundary == -1 || (c.ngram_buckets > 0 && c.ngram_boundary >= 1 &&
                                       c.ngram_boundary < c.vocab_size),
            "ngram_boundary", fmt::format("must be -1 (off) or a token id in [1, {}), with the n-gram branch",
                                          c.vocab_size));
  return c;
}

nlohmann::json TextTransformerConfig::to_json() const {
  nlohmann::json j = {{"vocab_size", vocab_size}, {"max_len", max_len},     {"num_classes", num_classes},
                      {"dim", dim},               {"depth", depth},         {"heads", heads},
                      {"mlp_ratio", mlp_ratio},   {"dropout", dropout},     {"attn_dropout", attn_dropout}};
  if (ngram_buckets > 0) {
    j["ngram_buckets"] = ngram_buckets;
    j["ngram_order"] = ngram_order;
    j["ngram_scale"] = ngram_scale;
    if (ngram_nb > 0) j["ngram_nb"] = ngram_nb;
    if (ngram_idf) j["ngram_idf"] = true;
    if (ngram_len > 0) j["ngram_len"] = ngram_len;
    if (ngram_fit > 0) j["ngram_fit"] = ngram_fit;
    if (ngram_fit > 0 && ngram_fit_loss != "logistic") j["ngram_fit_loss"] = ngram_fit_loss;
    if (ngram_boundary >= 0) j["ngram_boundary"] = ngram_boundary;
  }
  return j;
}

TextEncoderModel::TextEncoderModel(const TextTransformerConfig& cfg, Rng& rng) : cfg_(cfg) {
  const int64_t D = cfg.dim;
  tok_embed_ = register_module("tok_embed", std::make_shared<Embedding>(cfg.vocab_size, D, rng));
  pos_embed_ = register_module("pos_embed",
                               std::make_shared<LearnedPositionalEncoding>(cfg.max_len, D, rng));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout, rng));
  TransformerEncoderLayerOptions lo;
  lo.d_model = D;
  lo.n_heads = cfg.heads;
  lo.d_ff = std::lround(cfg.mlp_ratio * D);
  lo.dropout = cfg.dropout;
  lo.attn_dropout = cfg.attn_dropout;
  for (int64_t i = 0; i < cfg.depth; ++i)
    blocks_.push_back(register_module("blocks." + std::to_string(i),
                                      std::make_shared<TransformerEncoderLayer>(lo, rng)));
  norm_ = register_module("norm", std::make_shared<LayerNorm>(D));
}

bool TextEncoderModel::is_encoder_parameter(const std::string& name) {
  for (const char* p : {"tok_embed.", "pos_embed.", "blocks.", "norm."})
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

TextTransformer::TextTransformer(const TextTransformerConfig& cfg, Rng& rng)
    : TextEncoderModel(cfg, rng) {
  const int64_t D = cfg.dim;
  pool_ = register_module(
      "pool", std::make_shared<AttentionPooling>(
                  MultiHeadAttentionOptions{D, cfg.heads, 0, true, cfg.attn_dropout}, rng));
  head_ = register_module("head", std::make_shared<Linear>(D, cfg.num_classes, rng));
  // Last, and drawing nothing: the other tensors are as without the branch. With ngram_fit the
  // table is data (fit_ngram_table), not a parameter.
  if (cfg.ngram_buckets > 0 && cfg.ngram_fit > 0)
    ngram_ = register_fixed_buffer("ngram_table", Tensor::zeros({cfg.ngram_buckets, cfg.num_classes}));
  else if (cfg.ngram_buckets > 0)
    ngram_ = register_parameter("ngram_table", Tensor::zeros({cfg.ngram_buckets, cfg.num_classes}));
  if (cfg.ngram_nb > 0)  // filled by fit_ngram_nb (or a model file)
    nb_ = register_fixed_buffer("ngram_nb_ratio", Tensor::zeros({cfg.ngram_buckets, cfg.num_classes}));
  if (cfg.ngram_idf)  // filled by fit_ngram_idf (or a model file); 1 until then
    idf_ = register_fixed_buffer("ngram_idf", Tensor::full({cfg.ngram_buckets}, 1.0f));
}

Tensor padding_mask(const Tensor& ids) {
  FOCUS_CHECK(ids.dim() == 2 && ids.dtype() == DType::I64, ShapeError,
              "padding_mask: ids {} must be (N, L) I64", to_string(ids.shape()));
  const int64_t N = ids.size(0), L = ids.size(1);
  const Tensor c = ids.contiguous();
  const int64_t* p = c.data<int64_t>();
  Tensor mask = Tensor::zeros({N, L});  // (N, L)
  float* m = mask.data<float>();
  for (int64_t i = 0; i < N * L; ++i) m[i] = p[i] == 0 ? 1.f : 0.f;
  return mask;
}

Tensor TextTransformer::forward(const Tensor& ids) { return run(ids, nullptr); }
Tensor TextTransformer::forward_traced(const Tensor& ids, ForwardTrace& trace) {
  return run(ids, &trace.attention);
}
Tensor TextTransformer::forward_embedded(const Tensor& ids, Tensor& embedded) {
  return run(ids, nullptr, &embedded);
}

Tensor TextTransformer::ngram_logits(const Tensor& ids) {
  checked_padding_mask(checked_input(ids));
  if (!ngram_.defined()) return Tensor::zeros({ids.size(0), cfg_.num_classes}, head_->weight.dtype());
  return wide(ids);
}

Tensor TextTransformer::wide(const Tensor& ids) const {
  const int64_t N = ids.size(0), L = ids.size(1), S = L * cfg_.ngram_order;
  const Tensor c = ids.contiguous();
  const Tensor idf = idf_.defined() ? idf_.to(DType::F32).contiguous() : Tensor();  // (B)
  Tensor bucket = Tensor::empty({N, S}, DType::I64);   // (N, S)
  Tensor weight = Tensor::empty({N, S, 1}, DType::F64);  // (N, S, 1)
  text_ngram_features(c.data<int64_t>(), N, L, cfg_.ngram_order, cfg_.ngram_buckets,
                      bucket.data<int64_t>(), weight.data<double>(),
                      idf.defined() ? idf.data<float>() : nullptr, cfg_.ngram_boundary);
  if (cfg_.ngram_scale != 1.0) weight = mul(weight, cfg_.ngram_scale);
  Tensor rows = embedding(ngram_, bucket);  // (N, S, K)
  if (nb_.defined()) rows = mul(rows, embedding(nb_.detach().to(ngram_.dtype()), bucket));  // (N, S, K)
  return sum(mul(rows, weight.to(ngram_.dtype())), {1});  // (N, K)
}

Tensor TextTransformer::ngram_effective_table() const {
  if (!ngram_.defined()) return Tensor();
  const Tensor t = ngram_.detach().to(DType::F64);  // (B, K)
  return nb_.defined() ? mul(t, nb_.detach().to(DType::F64)).contiguous() : t.contiguous();
}

void TextTransformer::check_fit_rows(const char* what,
                                     const std::vector<std::vector<int64_t>>& rows) const {
  FOCUS_CHECK(!rows.empty(), ValueError, "text_transformer: {}: no rows", what);
  for (size_t i = 0; i < rows.size(); ++i) {
    FOCUS_CHECK(!rows[i].empty(), ValueError, "text_transformer: {}: row {} is empty", what, i);
    for (int64_t id : rows[i])
      FOCUS_CHECK(id >= 0 && id < cfg_.vocab_size, ValueError,
                  "text_transformer: {}: token id {} (row {}) not in [0, {})", what, id, i,
                  cfg_.vocab_size);
  }
}

void TextTransformer::fit_ngram_nb(const std::vector<std::vector<int64_t>>& rows,
                                   const std::vector<int64_t>& labels) {
  FOCUS_CHECK(nb_.defined(), ValueError,
              "text_transformer: fit_ngram_nb needs ngram_nb > 0 in the model config");
  check_fit_rows("fit_ngram_nb", rows);
  const std::vector<double> r = text_ngram_nb_ratios(rows, labels, cfg_.num_classes, cfg_.ngram_order,
                                                     cfg_.ngram_buckets, cfg_.ngram_nb,
                                                     cfg_.ngram_boundary);
  Tensor t = Tensor::empty({cfg_.ngram_buckets, cfg_.num_classes}, DType::F64);  // (B, K)
  std::copy(r.begin(), r.end(), t.data<double>());
  nb_.copy_(t.to(nb_.dtype()));
}

void TextTransformer::fit_ngram_idf(const std::vector<std::vector<int64_t>>& rows) {
  FOCUS_CHECK(idf_.defined(), ValueError,
              "text_transformer: fit_ngram_idf needs \"ngram_idf\": true in the model config");
  check_fit_rows("fit_ngram_idf", rows);
  const std::vector<float> idf =
      text_ngram_idf(rows, cfg_.ngram_order, cfg_.ngram_buckets, cfg_.ngram_boundary);
  Tensor t = Tensor::empty({cfg_.ngram_buckets}, DType::F32);  // (B)
  std::copy(idf.begin(), idf.end(), t.data<float>());
  idf_.copy_(t.to(idf_.dtype()));
}

NgramFit TextTransformer::fit_ngram_table(const std::vector<std::vector<int64_t>>& rows,
                                          const std::vector<int64_t>& labels,
                                          const std::vector<double>& class_weights) {
  FOCUS_CHECK(cfg_.ngram_fit > 0, ValueError,
              "text_transformer: fit_ngram_table needs ngram_fit > 0 in the model config");
  check_fit_rows("fit_ngram_table", rows);
  const int64_t K = cfg_.num_classes;
  NgramFitOptions opt;
  opt.C = cfg_.ngram_fit;
  opt.loss = cfg_.ngram_fit_loss;
  opt.boundary = cfg_.ngram_boundary;
  const Tensor nb = nb_.defined() ? nb_.to(DType::F64).contiguous() : Tensor();  // (B, K)
  opt.nb = nb.defined() ? nb.data<double>() : nullptr;
  const Tensor idf = idf_.defined() ? idf_.to(DType::F32).contiguous() : Tensor();  // (B)
  opt.idf = idf.defined() ? idf.data<float>() : nullptr;
  opt.class_weights = class_weights;
  NgramFit fit = text_ngram_fit(rows, labels, K, cfg_.ngram_order, cfg_.ngram_buckets, opt);
  Tensor t = Tensor::empty({cfg_.ngram_buckets, K}, DType::F64);  // (B, K) = w / scale
  double* tp = t.data<double>();
  for (size_t q = 0; q < fit.w.size(); ++q) tp[q] = fit.w[q] / cfg_.ngram_scale;
  ngram_.copy_(t.to(ngram_.dtype()));
  Tensor bias = Tensor::empty({K}, DType::F64);  // (K): the fit's intercepts
  for (int64_t k = 0; k < K; ++k) bias.data<double>()[k] = fit.intercept[size_t(k)];
  NoGradGuard ng;
  Tensor hb = head_->bias, hw = head_->weight;  // share the parameters' storage
  hb.copy_(bias.to(hb.dtype()));
  hw.copy_(Tensor::zeros(hw.shape(), hw.dtype()));  // the encoder starts adding nothing
  return fit;
}

Tensor TextTransformer::pooling_weights(const Tensor& ids) {
  std::vector<Tensor> maps;
  run(ids, &maps);
  const Tensor& w = maps.back();                 // (N, H, 1, L)
  return mean(reshape(w, {w.size(0), w.size(1), w.size(3)}), {1});  // (N, L)
}

Tensor TextEncoderModel::encode(const Tensor& ids) {
  AttentionMask am;
  return run_encoder(ids, am, nullptr);
}

Tensor TextEncoderModel::checked_padding_mask(const Tensor& ids) const {
  FOCUS_CHECK(ids.dim() == 2 && ids.dtype() == DType::I64, ShapeError,
              "{}: input {} {} must be (N, L) I64 token ids", name(),
              to_string(ids.shape()), dtype_name(ids.dtype()));
  const int64_t N = ids.size(0), L = ids.size(1);
  FOCUS_CHECK(L >= 1 && L <= cfg_.max_len, ShapeError,
              "{}: {} tokens per row; the model takes 1 to max_len = {}", name(), L,
              cfg_.max_len);
  const Tensor c = ids.contiguous();
  check_token_ids(c.data<int64_t>(), N, L, cfg_.vocab_size, cfg_.max_len, name());
  return padding_mask(c);  // (N, L)
}

void check_token_ids(const int64_t* ids, int64_t N, int64_t L, int64_t vocab, int64_t window,
                     const std::string& who) {
  for (int64_t n = 0; n < N; ++n) {
    bool any = false;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t v = ids[n * L + l];
      FOCUS_CHECK(v >= 0 && v < vocab, ValueError, "{}: token id {} (row {}, position {}) not in [0, {})",
                  who, v, n, l, vocab);
      any = any || (l < window && v != 0);
    }
    if (L <= window)
      FOCUS_CHECK(any, ValueError, "{}: row {} holds only padding", who, n);
    else
      FOCUS_CHECK(any, ValueError, "{}: row {} holds no token among its first max_len = {} ids", who,
                  n, window);
  }
}

Tensor TextEncoderModel::run_encoder(const Tensor& ids, AttentionMask& am,
                                     std::vector<Tensor>* maps, Tensor* embedded) {
  const Tensor mask = checked_padding_mask(ids);  // (N, L)
  am.key_padding_mask = mask;
  Tensor e = tok_embed_->forward(ids);  // (N, L, D)
  if (embedded) *embedded = e;
  Tensor h = dropout_->forward(pos_embed_->forward(e));  // (N, L, D)
  for (auto& block : blocks_) {
    Tensor w;
    h = block->forward(h, am, maps ? &w : nullptr);  // (N, L, D)
    if (maps) maps->push_back(w);                    // (N, H, L, L)
  }
  return norm_->forward(h);
}

Tensor TextTransformer::checked_input(const Tensor& ids) const {
  FOCUS_CHECK(ids.dim() == 2 && ids.dtype() == DType::I64, ShapeError,
              "{}: input {} {} must be (N, L) I64 token ids", name(), to_string(ids.shape()),
              dtype_name(ids.dtype()));
  const int64_t N = ids.size(0), L = ids.size(1), E = cfg_.max_len;
  if (L <= E) return ids;
  FOCUS_CHECK(L <= cfg_.input_len(), ShapeError, "{}: {} tokens per row; the model takes 1 to {} = {}",
              name(), L, cfg_.input_len() > E ? "ngram_len" : "max_len", cfg_.input_len());
  const Tensor c = ids.contiguous();
  check_token_ids(c.data<int64_t>(), N, L, cfg_.vocab_size, E, name());
  return c.slice(1, 0, E).contiguous();  // (N, max_len)
}

Tensor TextTransformer::run(const Tensor& ids, std::vector<Tensor>* maps, Tensor* embedded) {
  AttentionMask am;
  const Tensor enc = checked_input(ids);                  // (N, min(L, max_len))
  const Tensor h = run_encoder(enc, am, maps, embedded);  // (N, L', D)
  Tensor w;
  Tensor pooled = pool_->forward(h, am, maps ? &w : nullptr);  // (N, D)
  if (maps) maps->push_back(w);                                // (N, H, 1, L)
  const Tensor z = head_->forward(pooled);                     // (N, classes)
  return ngram_.defined() ? add(z, wide(ids)) : z;
}

nlohmann::json TextTransformer::config() const { return cfg_.to_json(); }

}  // namespace focus
