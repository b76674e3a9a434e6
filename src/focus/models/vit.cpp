// vit model (see vit.hpp).
#include "focus/models/vit.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "focus/models/config_reader.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/unary.hpp"
#include "focus/ops/view.hpp"

namespace focus {

namespace {
// The exits' logits of each model's last training-mode forward on this thread, until exit_loss
// takes them: the trainer's --data-parallel parts run forward and exit_loss on one thread each,
// at once, on the same model.
std::map<const Vit*, std::vector<Tensor>>& exit_stash() {
  thread_local std::map<const Vit*, std::vector<Tensor>> stash;
  return stash;
}
}  // namespace

VitConfig VitConfig::from_json(const nlohmann::json& j) {
  models::ConfigReader r(j, "vit");
  VitConfig c;
  c.image_size = r.get("image_size", c.image_size);
  c.in_channels = r.get("in_channels", c.in_channels);
  c.num_classes = r.get("num_classes", c.num_classes);
  c.patch = r.get("patch", c.patch);
  c.dim = r.get("dim", c.dim);
  c.depth = r.get("depth", c.depth);
  c.heads = r.get("heads", c.heads);
  c.kv_heads = r.get("kv_heads", c.kv_heads);
  c.mlp_ratio = r.get("mlp_ratio", c.mlp_ratio);
  c.dropout = r.get("dropout", c.dropout);
  c.attn_dropout = r.get("attn_dropout", c.attn_dropout);
  c.pool = r.get("pool", c.pool);
  c.stem = r.get("stem", c.stem);
  c.layer_heads = r.get("layer_heads", c.layer_heads);
  c.exits = r.get("exits", c.exits);
  c.exit_threshold = r.get("exit_threshold", c.exit_threshold);
  c.exit_temperatures = r.get("exit_temperatures", c.exit_temperatures);
  r.finish();
  const std::pair<const char*, int64_t> sizes[] = {{"image_size", c.image_size},
                                                   {"in_channels", c.in_channels},
                                                   {"num_classes", c.num_classes},
                                                   {"patch", c.patch},
                                                   {"dim", c.dim},
                                                   {"depth", c.depth},
                                                   {"heads", c.heads}};
  for (const auto& [key, value] : sizes) r.require(value > 0, key, "must be positive");
  r.require(c.image_size % c.patch == 0, "patch",
            fmt::format("{} must divide image_size {}", c.patch, c.image_size));
  r.require(c.dim % c.heads == 0, "heads", fmt::format("{} must divide dim {}", c.heads, c.dim));
  r.require(c.kv_heads >= 0 && (c.kv_heads == 0 || c.heads % c.kv_heads == 0), "kv_heads",
            fmt::format("{} must be 0 or divide heads {}", c.kv_heads, c.heads));
  r.require(c.mlp_ratio > 0.0 && std::lround(c.mlp_ratio * c.dim) > 0, "mlp_ratio",
            "must be positive");
  r.require(c.dropout >= 0.0 && c.dropout < 1.0, "dropout", "must be in [0, 1)");
  r.require(c.attn_dropout >= 0.0 && c.attn_dropout < 1.0, "attn_dropout", "must be in [0, 1)");
  r.require(c.pool == "cls" || c.pool == "attn", "pool",
            fmt::format("must be \"cls\" or \"attn\", got \"{}\"", c.pool));
  r.require(c.stem == "patch" || c.stem == "conv", "stem",
            fmt::format("must be \"patch\" or \"conv\", got \"{}\"", c.stem));
  r.require(c.stem == "patch" || (c.patch >= 2 && (c.patch & (c.patch - 1)) == 0), "patch",
            fmt::format("{} must be a power of two >= 2 with stem \"conv\"", c.patch));
  for (size_t j = 0; j < c.exits.size(); ++j)
    r.require(c.exits[j] >= 0 && c.exits[j] < c.depth - 1 && (j == 0 || c.exits[j] > c.exits[j - 1]),
              "exits", fmt::format("must be ascending block indices in [0, {}) (depth - 1)", c.depth - 1));
  r.require(std::isfinite(c.exit_threshold) && c.exit_threshold >= 0, "exit_threshold",
            "must be a number >= 0 (above 1: no early exit)");
  r.require(c.exit_temperatures.empty() || c.exit_temperatures.size() == c.exits.size(),
            "exit_temperatures", "must be empty or one per exit");
  for (double t : c.exit_temperatures)
    r.require(std::isfinite(t) && t > 0, "exit_temperatures", "must be positive numbers");
  if (!c.layer_heads.empty()) {
    r.require(int64_t(c.layer_heads.size()) == c.depth, "layer_heads",
              fmt::format("has {} entries for depth {}", c.layer_heads.size(), c.depth));
    const int64_t group = c.kv_heads == 0 ? 1 : c.heads / c.kv_heads;
    for (int64_t h : c.layer_heads)
      r.require(h >= 1 && h <= c.heads && h % group == 0, "layer_heads",
                fmt::format("entry {} must be in [1, {}] and a multiple of {} (heads / kv_heads)",
                            h, c.heads, group));
  }
  return c;
}

nlohmann::json VitConfig::to_json() const {
  nlohmann::json j = to_json_without_pruning();
  if (!layer_heads.empty()) j["layer_heads"] = layer_heads;
  if (!exits.empty()) {
    j["exits"] = exits;
    j["exit_threshold"] = exit_threshold;
    j["exit_temperatures"] = exit_temperatures;
  }
  return j;
}

nlohmann::json VitConfig::to_json_without_pruning() const {
  return {{"image_size", image_size},
          {"in_channels", in_channels},
          {"num_classes", num_classes},
          {"patch", patch},
          {"dim", dim},
          {"depth", depth},
          {"heads", heads},
          {"kv_heads", kv_heads},
          {"mlp_ratio", mlp_ratio},
          {"dropout", dropout},
          {"attn_dropout", attn_dropout},
          {"pool", pool},
          {"stem", stem}};
}

Vit::Vit(const VitConfig& cfg, Rng& rng) : cfg_(cfg) {
  const int64_t D = cfg.dim;
  if (cfg.stem == "conv") {
    int64_t in = cfg.in_channels;
    int64_t i = 0;
    for (int64_t p = cfg.patch; p > 1; p /= 2, ++i) {
      const int64_t out = p == 2 ? D : std::max<int64_t>(1, D / 2);
      const std::string name = "stem." + std::to_string(i);
      stem_conv_.push_back(register_module(
          name + ".conv", std::make_shared<Conv2d>(in, out, 3, rng, 2, 1, false)));
      stem_bn_.push_back(register_module(name + ".bn", std::make_shared<BatchNorm2d>(out)));
      in = out;
    }
    patch_embed_ = register_module("patch_embed", std::make_shared<Conv2d>(D, D, 1, rng));
  } else {
    patch_embed_ = register_module(
        "patch_embed", std::make_shared<Conv2d>(cfg.in_channels, D, cfg.patch, rng, cfg.patch));
  }
  if (cfg.pool == "cls") cls_token_ = register_parameter("cls_token", Tensor::zeros({1, 1, D}));
  pos_embed_ = register_module("pos_embed",
                               std::make_shared<LearnedPositionalEncoding>(num_tokens(), D, rng));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout, rng));
  TransformerEncoderLayerOptions lo;
  lo.d_model = D;
  lo.n_heads = cfg.heads;
  lo.n_kv_heads = cfg.kv_heads;
  lo.d_ff = std::lround(cfg.mlp_ratio * D);
  lo.dropout = cfg.dropout;
  lo.attn_dropout = cfg.attn_dropout;
  lo.head_dim = D / cfg.heads;
  for (int64_t i = 0; i < cfg.depth; ++i) {
    lo.n_heads = cfg.heads_in(i);
    lo.n_kv_heads = cfg.kv_heads == 0 ? 0 : lo.n_heads * cfg.kv_heads / cfg.heads;
    blocks_.push_back(register_module("blocks." + std::to_string(i),
                                      std::make_shared<TransformerEncoderLayer>(lo, rng)));
  }
  norm_ = register_module("norm", std::make_shared<LayerNorm>(D));
  if (cfg.pool == "attn")
    pool_ = register_module(
        "pool",
        std::make_shared<AttentionPooling>(
            MultiHeadAttentionOptions{D, cfg.heads, cfg.kv_heads, true, cfg.attn_dropout}, rng));
  head_ = register_module("head", std::make_shared<Linear>(D, cfg.num_classes, rng));
  for (size_t j = 0; j < cfg.exits.size(); ++j) {
    const std::string name = "exits." + std::to_string(j);
    exit_norms_.push_back(register_module(name + ".norm", std::make_shared<LayerNorm>(D)));
    exit_heads_.push_back(
        register_module(name + ".head", std::make_shared<Linear>(D, cfg.num_classes, rng)));
  }
}

int64_t Vit::num_tokens() const {
  const int64_t side = cfg_.image_size / cfg_.patch;
  return side * side + (cfg_.pool == "cls" ? 1 : 0);
}

Tensor Vit::forward(const Tensor& x) {
  if (cfg_.exits.empty()) return run(x, nullptr);
  if (is_training()) {
    std::vector<Tensor> z = forward_exits(x);
    const Tensor final_logits = z.back();
    z.pop_back();
    exit_stash()[this] = std::move(z);
    return final_logits;
  }
  if (cfg_.exit_threshold <= 1.0) return run_early_exit(x);
  Tensor z = run(x, nullptr);
  layers_used_.assign(size_t(x.size(0)), cfg_.depth);
  return z;
}

Tensor Vit::forward_traced(const Tensor& x, ForwardTrace& trace) {
  return run(x, &trace.attention);
}

Tensor Vit::embed(const Tensor& x) {
  const int64_t S = cfg_.image_size, D = cfg_.dim;
  FOCUS_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_channels && x.size(2) == S && x.size(3) == S,
              ShapeError, "vit: input {} must be (N, {}, {}, {})", to_string(x.shape()),
              cfg_.in_channels, S, S);
  const int64_t N = x.size(0);
  Tensor s = x;
  for (size_t i = 0; i < stem_conv_.size(); ++i)  // (N, C_i, S / 2^(i+1), S / 2^(i+1))
    s = stem_conv_[i]->forward_bn(s, *stem_bn_[i], true);  // relu(bn(conv(s)))
  Tensor h = transpose(flatten(patch_embed_->forward(s), 2), 1, 2);             // (N, P, D)
  if (cls_token_.defined()) h = concat({expand(cls_token_, {N, 1, D}), h}, 1);  // (N, T, D)
  return dropout_->forward(pos_embed_->forward(h));
}

Tensor Vit::pooled(const Tensor& h, std::vector<Tensor>* maps) {
  if (!pool_) return select(h, 1, 0);  // the class token (N, D)
  Tensor w;
  Tensor p = pool_->forward(h, {}, maps ? &w : nullptr);
  if (maps) maps->push_back(w);  // (N, H, 1, T)
  return p;
}

Tensor Vit::exit_logits(size_t j, const Tensor& h) {
  const Tensor n = exit_norms_[j]->forward(h);                     // (N, T, D)
  const Tensor p = pool_ ? mean(n, {1}) : select(n, 1, 0);         // (N, D)
  return exit_heads_[j]->forward(p);                               // (N, classes)
}

Tensor Vit::run(const Tensor& x, std::vector<Tensor>* maps) {
  Tensor h = embed(x);  // (N, T, D)
  for (auto& block : blocks_) {
    Tensor w;
    h = block->forward(h, {}, maps ? &w : nullptr);  // (N, T, D)
    if (maps) maps->push_back(w);                    // (N, H, T, T)
  }
  return head_->forward(pooled(norm_->forward(h), maps));  // (N, classes)
}

std::vector<Tensor> Vit::forward_exits(const Tensor& x) {
  std::vector<Tensor> out;
  Tensor h = embed(x);  // (N, T, D)
  size_t j = 0;
  for (int64_t i = 0; i < cfg_.depth; ++i) {
    h = blocks_[size_t(i)]->forward(h);
    if (j < cfg_.exits.size() && cfg_.exits[j] == i) out.push_back(exit_logits(j++, h));
  }
  out.push_back(head_->forward(pooled(norm_->forward(h), nullptr)));
  return out;
}

Tensor Vit::exit_loss(const Tensor& y) {
  Tensor total;
  auto& stash = exit_stash();
  const auto it = stash.find(this);
  if (it == stash.end()) return total;
  for (const Tensor& z : it->second) {
    const Tensor l = cross_entropy(z, y);
    total = total.defined() ? add(total, l) : l;
  }
  stash.erase(it);
  return total;
}

void Vit::set_exit_policy(double threshold, const std::vector<double>& temperatures) {
  VitConfig c = cfg_;
  c.exit_threshold = threshold;
  c.exit_temperatures = temperatures;
  cfg_ = VitConfig::from_json(c.to_json());  // the config's checks
}

// Rows leave at the first exit whose calibrated top probability reaches the threshold; the
// rest run on as a smaller batch. Inference only (no graph is kept across the row selection).
Tensor Vit::run_early_exit(const Tensor& x) {
  const int64_t N = x.size(0), K = cfg_.num_classes;
  std::vector<double> out(size_t(N * K));
  layers_used_.assign(size_t(N), cfg_.depth);
  std::vector<int64_t> alive(static_cast<size_t>(N));
  for (int64_t r = 0; r < N; ++r) alive[size_t(r)] = r;
  DType dt = x.dtype();
  auto write = [&](const Tensor& z, const std::vector<int64_t>& rows, const std::vector<bool>* which,
                   int64_t layers) {
    const std::vector<double> v = z.to_vector<double>();  // (n, K)
    for (size_t r = 0; r < rows.size(); ++r) {
      if (which && !(*which)[r]) continue;
      std::copy(v.begin() + int64_t(r) * K, v.begin() + int64_t(r + 1) * K,
                out.begin() + rows[r] * K);
      layers_used_[size_t(rows[r])] = layers;
    }
  };
  Tensor h = embed(x);  // (n, T, D), n rows still running
  dt = h.dtype();
  size_t j = 0;
  for (int64_t i = 0; i < cfg_.depth && !alive.empty(); ++i) {
    h = blocks_[size_t(i)]->forward(h);
    if (j >= cfg_.exits.size() || cfg_.exits[j] != i) continue;
    const Tensor z = exit_logits(j, h);  // (n, K)
    const double T = cfg_.exit_temperatures.empty() ? 1.0 : cfg_.exit_temperatures[j];
    ++j;
    const std::vector<double> p = z.to_vector<double>();
    std::vector<bool> leaves(alive.size(), false);
    std::vector<int64_t> stay_rows, stay_alive;
    for (size_t r = 0; r < alive.size(); ++r) {
      const double* row = p.data() + int64_t(r) * K;
      const double m = *std::max_element(row, row + K);
      double denom = 0;
      for (int64_t k = 0; k < K; ++k) denom += std::exp((row[k] - m) / T);
      leaves[r] = 1.0 / denom >= cfg_.exit_threshold;  // the top class's softmax(z / T)
      if (!leaves[r]) {
        stay_rows.push_back(int64_t(r));
        stay_alive.push_back(alive[r]);
      }
    }
    write(z, alive, &leaves, i + 1);
    if (stay_rows.size() != alive.size() && !stay_rows.empty())
      h = index_select(h, 0, Tensor::from_vector(stay_rows, {int64_t(stay_rows.size())}));
    alive = std::move(stay_alive);
  }
  if (!alive.empty()) write(head_->forward(pooled(norm_->forward(h), nullptr)), alive, nullptr, cfg_.depth);
  return Tensor::from_vector(out, {N, K}).to(dt);
}

nlohmann::json Vit::config() const { return cfg_.to_json(); }

}  // namespace focus
