// cnn_se model (see cnn_se.hpp).
#include "focus/models/cnn_se.hpp"

#include <nlohmann/json.hpp>

#include "focus/models/config_reader.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/unary.hpp"

namespace focus {

// conv3x3-BN-ReLU x2, SE, maxpool 2: (N, C, H, W) -> (N, O, H/2, W/2).
class CnnSe::Stage : public Module {
 public:
  Stage(int64_t in, int64_t out, const CnnSeConfig& cfg, Rng& rng)
      : conv1(register_module("conv1", std::make_shared<Conv2d>(in, out, 3, rng, 1, 1, false))),
        bn1(register_module("bn1", std::make_shared<BatchNorm2d>(out, 1e-5, cfg.bn_momentum))),
        conv2(register_module("conv2", std::make_shared<Conv2d>(out, out, 3, rng, 1, 1, false))),
        bn2(register_module("bn2", std::make_shared<BatchNorm2d>(out, 1e-5, cfg.bn_momentum))),
        se(register_module("se", std::make_shared<SqueezeExcitation>(out, cfg.se_reduction, rng))) {
  }

  // trace (optional): the gates join channel_gates, the pre-pool output becomes features.
  Tensor forward(const Tensor& x, ForwardTrace* trace) {
    Tensor h = conv1->forward_bn(x, *bn1, true);  // relu(bn1(conv1(x))), one pass with int8
    h = conv2->forward_bn(h, *bn2, true);
    Tensor gates;
    h = se->forward(h, trace ? &gates : nullptr);  // (N, O, H, W)
    if (trace) {
      trace->channel_gates.push_back(gates);
      trace->features = h;
    }
    return max_pool2d(h, 2);
  }

  const std::shared_ptr<Conv2d> conv1;
  const std::shared_ptr<BatchNorm2d> bn1;
  const std::shared_ptr<Conv2d> conv2;
  const std::shared_ptr<BatchNorm2d> bn2;
  const std::shared_ptr<SqueezeExcitation> se;
};

CnnSeConfig CnnSeConfig::from_json(const nlohmann::json& j) {
  models::ConfigReader r(j, "cnn_se");
  CnnSeConfig c;
  c.in_channels = r.get("in_channels", c.in_channels);
  c.num_classes = r.get("num_classes", c.num_classes);
  c.channels = r.get("channels", c.channels);
  c.se_reduction = r.get("se_reduction", c.se_reduction);
  c.dropout = r.get("dropout", c.dropout);
  c.bn_momentum = r.get("bn_momentum", c.bn_momentum);
  r.finish();
  r.require(c.in_channels > 0, "in_channels", "must be positive");
  r.require(c.num_classes > 0, "num_classes", "must be positive");
  r.require(!c.channels.empty(), "channels", "must list at least one stage");
  for (int64_t ch : c.channels) r.require(ch > 0, "channels", "must be positive");
  r.require(c.se_reduction > 0, "se_reduction", "must be positive");
  r.require(c.dropout >= 0.0 && c.dropout < 1.0, "dropout", "must be in [0, 1)");
  r.require(c.bn_momentum >= 0.0 && c.bn_momentum <= 1.0, "bn_momentum", "must be in [0, 1]");
  return c;
}

nlohmann::json CnnSeConfig::to_json() const {
  return {{"in_channels", in_channels}, {"num_classes", num_classes},
          {"channels", channels},       {"se_reduction", se_reduction},
          {"dropout", dropout},         {"bn_momentum", bn_momentum}};
}

CnnSe::CnnSe(const CnnSeConfig& cfg, Rng& rng) : cfg_(cfg) {
  int64_t in = cfg.in_channels;
  for (size_t s = 0; s < cfg.channels.size(); ++s) {
    stages_.push_back(register_module("stages." + std::to_string(s),
                                      std::make_shared<Stage>(in, cfg.channels[s], cfg, rng)));
    in = cfg.channels[s];
  }
  dropout_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout, rng));
  head_ = register_module("head", std::make_shared<Linear>(in, cfg.num_classes, rng));
}

Tensor CnnSe::forward(const Tensor& x) { return run(x, nullptr); }
Tensor CnnSe::forward_traced(const Tensor& x, ForwardTrace& trace) { return run(x, &trace); }

Tensor CnnSe::run(const Tensor& x, ForwardTrace* trace) {
  const int64_t min_size = int64_t(1) << cfg_.channels.size();
  FOCUS_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_channels && x.size(2) >= min_size &&
                  x.size(3) >= min_size,
              ShapeError, "cnn_se: input {} must be (N, {}, H, W) with H, W >= {}",
              to_string(x.shape()), cfg_.in_channels, min_size);
  Tensor h = x;
  for (auto& s : stages_) h = s->forward(h, trace);                     // (N, C_s, H / 2^s, W / 2^s)
  return head_->forward(dropout_->forward(global_avg_pool2d(h)));  // (N, classes)
}

nlohmann::json CnnSe::config() const { return cfg_.to_json(); }

}  // namespace focus
