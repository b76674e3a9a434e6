// text-transformer model (see text_transformer.hpp).
#include "focus/models/text_transformer.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

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
  r.require(c.ngram_order >= 1 && c.ngram_order <= 4, "ngram_order", "must be in [1, 4]");
  r.require(c.ngram_scale > 0 && std::isfinite(c.ngram_scale), "ngram_scale", "must be positive");
  r.require(c.ngram_nb >= 0 && std::isfinite(c.ngram_nb), "ngram_nb", "must be >= 0 (0: off)");
  r.require(c.ngram_nb == 0 || c.ngram_buckets > 0, "ngram_nb",
            "needs the n-gram branch (ngram_buckets > 0)");
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
  }
  return j;
}

int64_t text_ngram_bucket(const int64_t* ids, int64_t n, int64_t buckets) {
  auto mix = [](uint64_t x) {  // splitmix64's finaliser
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(uint64_t(n));
  for (int64_t i = 0; i < n; ++i) h = mix(h ^ uint64_t(ids[i]));
  return int64_t(h % uint64_t(buckets));
}

void text_ngram_features(const int64_t* ids, int64_t N, int64_t L, int64_t order, int64_t buckets,
                         int64_t* bucket, double* weight) {
  for (int64_t r = 0; r < N; ++r) {
    const int64_t* row = ids + r * L;
    int64_t* b = bucket + r * L * order;
    double* w = weight + r * L * order;
    int64_t count = 0;
    for (int64_t l = 0; l < L; ++l) {
      int64_t run = 0;  // non-padding ids from l on, up to order
      while (run < order && l + run < L && row[l + run] != 0) ++run;
      for (int64_t n = 1; n <= order; ++n) {
        const bool valid = n <= run;
        b[l * order + n - 1] = valid ? text_ngram_bucket(row + l, n, buckets) : 0;
        w[l * order + n - 1] = valid ? 1.0 : 0.0;
        count += valid;
      }
    }
    const double norm = std::sqrt(double(std::max<int64_t>(count, 1)));
    for (int64_t s = 0; s < L * order; ++s) w[s] /= norm;
  }
}

std::vector<double> text_ngram_nb_ratios(const std::vector<std::vector<int64_t>>& rows,
                                         const std::vector<int64_t>& labels, int64_t K,
                                         int64_t order, int64_t buckets, double alpha) {
  FOCUS_CHECK(rows.size() == labels.size(), ValueError,
              "text_ngram_nb_ratios: {} rows but {} labels", rows.size(), labels.size());
  FOCUS_CHECK(K >= 2 && order >= 1 && buckets >= 1 && alpha > 0 && std::isfinite(alpha), ValueError,
              "text_ngram_nb_ratios: K {} (>= 2), order {} (>= 1), buckets {} (>= 1), alpha {} (> 0)",
              K, order, buckets, alpha);
  std::vector<double> count(size_t(buckets * K), 0.0);  // (buckets, K): rows holding the bucket
  std::vector<int64_t> bucket;
  std::vector<double> weight;
  std::vector<int64_t> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t k = labels[i], L = int64_t(rows[i].size());
    FOCUS_CHECK(k >= 0 && k < K, ValueError, "text_ngram_nb_ratios: row {} has label {} not in [0, {})",
                i, k, K);
    if (L == 0) continue;
    bucket.resize(size_t(L * order));
    weight.resize(size_t(L * order));
    text_ngram_features(rows[i].data(), 1, L, order, buckets, bucket.data(), weight.data());
    seen.clear();
    for (size_t s = 0; s < bucket.size(); ++s)
      if (weight[s] != 0) seen.push_back(bucket[s]);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int64_t b : seen) count[size_t(b * K + k)] += 1;
  }
  std::vector<double> total(size_t(buckets), 0.0);  // rows of any class holding the bucket
  for (int64_t b = 0; b < buckets; ++b)
    for (int64_t k = 0; k < K; ++k) total[size_t(b)] += count[size_t(b * K + k)];
  std::vector<double> norm_k(size_t(K), 0.0), norm_rest(size_t(K), 0.0);
  for (int64_t b = 0; b < buckets; ++b) {
    if (total[size_t(b)] == 0) continue;
    for (int64_t k = 0; k < K; ++k) {
      norm_k[size_t(k)] += count[size_t(b * K + k)] + alpha;
      norm_rest[size_t(k)] += total[size_t(b)] - count[size_t(b * K + k)] + alpha;
    }
  }
  std::vector<double> r(size_t(buckets * K), 0.0);
  for (int64_t b = 0; b < buckets; ++b) {
    if (total[size_t(b)] == 0) continue;
    for (int64_t k = 0; k < K; ++k) {
      const double ck = count[size_t(b * K + k)], rest = total[size_t(b)] - ck;
      r[size_t(b * K + k)] = std::log((ck + alpha) / norm_k[size_t(k)]) -
                             std::log((rest + alpha) / norm_rest[size_t(k)]);
    }
  }
  return r;
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
  if (cfg.ngram_buckets > 0)  // last, and drawing nothing: the other tensors are as without it
    ngram_ = register_parameter("ngram_table", Tensor::zeros({cfg.ngram_buckets, cfg.num_classes}));
  if (cfg.ngram_nb > 0)  // filled by fit_ngram_nb (or a model file)
    nb_ = register_buffer("ngram_nb_ratio", Tensor::zeros({cfg.ngram_buckets, cfg.num_classes}));
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
  checked_padding_mask(ids);
  if (!ngram_.defined()) return Tensor::zeros({ids.size(0), cfg_.num_classes}, head_->weight.dtype());
  return wide(ids);
}

Tensor TextTransformer::wide(const Tensor& ids) const {
  const int64_t N = ids.size(0), L = ids.size(1), S = L * cfg_.ngram_order;
  const Tensor c = ids.contiguous();
  Tensor bucket = Tensor::empty({N, S}, DType::I64);   // (N, S)
  Tensor weight = Tensor::empty({N, S, 1}, DType::F64);  // (N, S, 1)
  text_ngram_features(c.data<int64_t>(), N, L, cfg_.ngram_order, cfg_.ngram_buckets,
                      bucket.data<int64_t>(), weight.data<double>());
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

void TextTransformer::fit_ngram_nb(const std::vector<std::vector<int64_t>>& rows,
                                   const std::vector<int64_t>& labels) {
  FOCUS_CHECK(nb_.defined(), ValueError,
              "text_transformer: fit_ngram_nb needs ngram_nb > 0 in the model config");
  FOCUS_CHECK(!rows.empty(), ValueError, "text_transformer: fit_ngram_nb: no rows");
  for (size_t i = 0; i < rows.size(); ++i) {
    FOCUS_CHECK(!rows[i].empty(), ValueError, "text_transformer: fit_ngram_nb: row {} is empty", i);
    for (int64_t id : rows[i])
      FOCUS_CHECK(id >= 0 && id < cfg_.vocab_size, ValueError,
                  "text_transformer: fit_ngram_nb: token id {} (row {}) not in [0, {})", id, i,
                  cfg_.vocab_size);
  }
  const std::vector<double> r = text_ngram_nb_ratios(rows, labels, cfg_.num_classes, cfg_.ngram_order,
                                                     cfg_.ngram_buckets, cfg_.ngram_nb);
  Tensor t = Tensor::empty({cfg_.ngram_buckets, cfg_.num_classes}, DType::F64);  // (B, K)
  std::copy(r.begin(), r.end(), t.data<double>());
  nb_.copy_(t.to(nb_.dtype()));
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
  const Tensor mask = padding_mask(ids);  // (N, L)
  const float* m = mask.data<float>();
  const Tensor c = ids.contiguous();
  const int64_t* p = c.data<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    bool any = false;
    for (int64_t l = 0; l < L; ++l) {
      any = any || m[n * L + l] == 0.f;
      FOCUS_CHECK(p[n * L + l] >= 0 && p[n * L + l] < cfg_.vocab_size, ValueError,
                  "{}: token id {} (row {}, position {}) not in [0, {})", name(),
                  p[n * L + l], n, l, cfg_.vocab_size);
    }
    FOCUS_CHECK(any, ValueError, "{}: row {} holds only padding", name(), n);
  }
  return mask;
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

Tensor TextTransformer::run(const Tensor& ids, std::vector<Tensor>* maps, Tensor* embedded) {
  AttentionMask am;
  const Tensor h = run_encoder(ids, am, maps, embedded);  // (N, L, D)
  Tensor w;
  Tensor pooled = pool_->forward(h, am, maps ? &w : nullptr);  // (N, D)
  if (maps) maps->push_back(w);                                // (N, H, 1, L)
  const Tensor z = head_->forward(pooled);                     // (N, classes)
  return ngram_.defined() ? add(z, wide(ids)) : z;
}

nlohmann::json TextTransformer::config() const { return cfg_.to_json(); }

}  // namespace focus
