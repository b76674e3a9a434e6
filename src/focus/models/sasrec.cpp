// sasrec model (see sasrec.hpp).
#include "focus/models/sasrec.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/models/config_reader.hpp"
#include "focus/nn/init.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"

namespace focus {

SasRecConfig SasRecConfig::from_json(const nlohmann::json& j) {
  models::ConfigReader r(j, "sasrec");
  SasRecConfig c;
  c.num_items = r.get("num_items", c.num_items);
  c.max_len = r.get("max_len", c.max_len);
  c.dim = r.get("dim", c.dim);
  c.depth = r.get("depth", c.depth);
  c.heads = r.get("heads", c.heads);
  c.mlp_ratio = r.get("mlp_ratio", c.mlp_ratio);
  c.dropout = r.get("dropout", c.dropout);
  c.negatives = r.get("negatives", c.negatives);
  r.finish();
  r.require(c.negatives >= 0, "negatives", "must be >= 0 (0: full softmax)");
  r.require(c.num_items >= 2, "num_items", "must be >= 2 (padding and one item)");
  const std::pair<const char*, int64_t> sizes[] = {{"max_len", c.max_len}, {"dim", c.dim}, {"heads", c.heads}};
  for (const auto& [key, value] : sizes) r.require(value > 0, key, "must be positive");
  r.require(c.depth >= 0, "depth", "must be >= 0");
  r.require(c.dim % c.heads == 0, "heads", fmt::format("{} must divide dim {}", c.heads, c.dim));
  r.require(c.mlp_ratio > 0.0 && std::lround(c.mlp_ratio * c.dim) > 0, "mlp_ratio", "must be positive");
  r.require(c.dropout >= 0.0 && c.dropout < 1.0, "dropout", "must be in [0, 1)");
  return c;
}

nlohmann::json SasRecConfig::to_json() const {
  return {{"num_items", num_items}, {"max_len", max_len}, {"dim", dim},      {"depth", depth},
          {"heads", heads},         {"mlp_ratio", mlp_ratio}, {"dropout", dropout},
          {"negatives", negatives}};
}

SasRec::SasRec(const SasRecConfig& cfg, Rng& rng) : cfg_(cfg) {
  const int64_t D = cfg.dim;
  items_ = register_module("items", std::make_shared<Embedding>(cfg.num_items, D, rng));
  items_->mark_projection();  // the shared output projection
  Tensor w = items_->weight;
  w.copy_(init::normal({cfg.num_items, D}, 1.0 / std::sqrt(double(D)), rng));
  pos_ = register_module("pos", std::make_shared<LearnedPositionalEncoding>(cfg.max_len, D, rng));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout, rng));
  TransformerEncoderLayerOptions lo;
  lo.d_model = D;
  lo.n_heads = cfg.heads;
  lo.d_ff = std::lround(cfg.mlp_ratio * D);
  lo.dropout = cfg.dropout;
  for (int64_t i = 0; i < cfg.depth; ++i)
    blocks_.push_back(register_module("blocks." + std::to_string(i),
                                      std::make_shared<TransformerEncoderLayer>(lo, rng)));
  norm_ = register_module("norm", std::make_shared<LayerNorm>(D));
  neg_rng_ = Rng(rng.next_u64());  // drawn last: the layers' initial weights do not depend on it
  register_rng("negatives.rng", &neg_rng_);
}

Tensor SasRec::hidden(const Tensor& ids) {
  FOCUS_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::I64, ShapeError,
              "sasrec: input {} must be (N, L) I64 item ids",
              ids.defined() ? to_string(ids.shape()) : std::string("undefined"));
  const int64_t N = ids.size(0), L = ids.size(1);
  FOCUS_CHECK(L >= 1 && L <= cfg_.max_len, ShapeError,
              "sasrec: {} items per history; the model takes 1 to max_len = {}", L, cfg_.max_len);
  const Tensor c = ids.contiguous();
  const int64_t* p = c.data<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    FOCUS_CHECK(p[n * L] != 0, ValueError, "sasrec: history {} is empty (starts with padding)", n);
    for (int64_t l = 0; l < L; ++l)
      FOCUS_CHECK(p[n * L + l] >= 0 && p[n * L + l] < cfg_.num_items, ValueError,
                  "sasrec: item id {} (row {}, position {}) not in [0, {})", p[n * L + l], n, l,
                  cfg_.num_items);
  }
  AttentionMask causal;
  causal.causal = true;
  Tensor h = dropout_->forward(pos_->forward(items_->forward(ids)));  // (N, L, D)
  for (auto& block : blocks_) h = block->forward(h, causal);         // (N, L, D)
  return norm_->forward(h);                                          // (N, L, D)
}

Tensor SasRec::forward(const Tensor& ids) {
  Tensor h = hidden(ids);  // (N, L, D)
  const int64_t N = h.size(0), L = h.size(1), D = h.size(2);
  const Tensor c = ids.contiguous();
  const int64_t* p = c.data<int64_t>();
  std::vector<int64_t> rows(static_cast<size_t>(N), 0);  // each row's last item position, flattened
  for (int64_t n = 0; n < N; ++n) {
    int64_t last = L - 1;
    while (p[n * L + last] == 0) --last;  // hidden() checked position 0 holds an item
    rows[size_t(n)] = n * L + last;
  }
  const Tensor last = index_select(reshape(h, {N * L, D}), 0,
                                   Tensor::from_vector(rows, {N}));  // (N, D)
  return items_->project(last);                                      // (N, V)
}

std::pair<Tensor, Tensor> SasRec::forward_scored(const Tensor& ids, const Tensor& next) {
  if (next.defined() && next.dim() == 1) return {forward(ids), next};  // evaluation: the next item
  Tensor h = hidden(ids);  // (N, L, D)
  const int64_t N = h.size(0), L = h.size(1), D = h.size(2);
  FOCUS_CHECK(next.defined() && next.dtype() == DType::I64 && next.dim() == 2 && next.size(0) == N &&
                  next.size(1) == L,
              ShapeError, "sasrec: training targets {} must be (N, L) = ({}, {}) I64",
              next.defined() ? to_string(next.shape()) : std::string("undefined"), N, L);
  const auto t = next.to_vector<int64_t>();
  std::vector<int64_t> rows, targets;
  for (int64_t i = 0; i < N * L; ++i)
    if (t[size_t(i)] != -100) {
      FOCUS_CHECK(t[size_t(i)] >= 1 && t[size_t(i)] < cfg_.num_items, ValueError,
                  "sasrec: target item {} not in [1, {})", t[size_t(i)], cfg_.num_items);
      rows.push_back(i);
      targets.push_back(t[size_t(i)]);
    }
  const int64_t M = int64_t(rows.size());
  FOCUS_CHECK(M > 0, ValueError, "sasrec: a training batch without targets");
  const Tensor sel = index_select(reshape(h, {N * L, D}), 0, Tensor::from_vector(rows, {M}));  // (M, D)
  if (cfg_.negatives == 0 || !is_training())
    return {items_->project(sel), Tensor::from_vector(targets, {M})};  // (M, V), (M)
  const int64_t K = cfg_.negatives + 1, V = cfg_.num_items;
  const CounterDraw draw = reserve_counters(neg_rng_, uint64_t(4 * M * K));
  Rng r(draw.seed);
  r.set_state(draw.seed, draw.offset);
  std::vector<int64_t> cand(size_t(M * K));  // per target: the target, then K - 1 negatives
  for (int64_t m = 0; m < M; ++m) {
    const int64_t t = targets[size_t(m)];
    cand[size_t(m * K)] = t;
    for (int64_t k = 1; k < K; ++k) {
      const int64_t j = 1 + r.randint(V - 1);
      cand[size_t(m * K + k)] = j != t ? j : t % (V - 1) + 1;
    }
  }
  const Tensor e = items_->forward(Tensor::from_vector(cand, {M, K}));  // (M, K, D)
  const Tensor logits = sum(mul(e, unsqueeze(sel, 1)), {2});           // (M, K)
  return {logits, Tensor::zeros({M}, DType::I64)};                      // target index 0
}

nlohmann::json SasRec::config() const { return cfg_.to_json(); }

}  // namespace focus
