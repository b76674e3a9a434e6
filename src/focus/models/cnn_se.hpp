// cnn_se: a small CNN with squeeze-and-excitation for 28x28 grey images (Fashion-MNIST).
//   per stage s (channels c_s):  conv3x3-BN-ReLU, conv3x3-BN-ReLU, SE(c_s), maxpool 2x2
//   then global average pool -> dropout -> linear to classes.
// Default stages 32, 64, 128 (299,202 parameters). Convs have no bias (BN follows).
// Parameter names: stages.{s}.{conv1,bn1,conv2,bn2,se}.*, head.*.
#pragma once
#include <memory>
#include <vector>

#include "focus/models/image_classifier.hpp"

namespace focus {

class Dropout;
class Linear;

struct CnnSeConfig {
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  std::vector<int64_t> channels = {32, 64, 128};  // one stage each, each halves H and W
  int64_t se_reduction = 4;
  double dropout = 0.2;  // before the head
  double bn_momentum = 0.1;

  static CnnSeConfig from_json(const nlohmann::json& j);  // ValueError on bad keys/values
  nlohmann::json to_json() const;
};

class CnnSe : public ImageClassifier {
 public:
  CnnSe(const CnnSeConfig& cfg, Rng& rng);
  // x (N, C, H, W), H and W >= 2^stages -> (N, classes)
  Tensor forward(const Tensor& x) override;
  // Records each stage's SE gates (N, C_s) and, as features, the last stage's output before its
  // max-pool (N, C_last, H / 2^(stages-1), W / 2^(stages-1)): 7x7 for 28x28 inputs.
  Tensor forward_traced(const Tensor& x, ForwardTrace& trace) override;
  nlohmann::json config() const override;
  std::string name() const override { return "cnn_se"; }

 private:
  class Stage;
  Tensor run(const Tensor& x, ForwardTrace* trace);
  CnnSeConfig cfg_;
  std::vector<std::shared_ptr<Stage>> stages_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<Linear> head_;
};

}  // namespace focus
