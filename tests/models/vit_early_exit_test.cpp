// Early exit of the vit (models/vit.hpp "exits"): at threshold 0 every image leaves at the first
// exit with that exit's logits; above 1 none leaves and the logits equal the plain model's (the
// same weights without exits); in between, the images that leave are exactly those whose
// calibrated confidence reaches the threshold; training adds the exits' losses; bad exit configs
// are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/models/vit.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/softmax.hpp"
#include "focus/tensor/rng.hpp"
#include "support/expect_error.hpp"
#include "support/gradcheck.hpp"

namespace focus {
namespace {

VitConfig small_config(const std::string& pool = "cls") {
  VitConfig c;
  c.dim = 16;
  c.heads = 2;
  c.depth = 3;
  c.patch = 7;
  c.dropout = 0.0;
  c.pool = pool;
  return c;
}

Tensor images(int64_t n, uint64_t seed) {
  Rng rng(seed);
  return Tensor::randn({n, 1, 28, 28}, rng);
}

TEST(VitEarlyExit, ThresholdZeroLeavesAtTheFirstExit) {
  for (const char* pool : {"cls", "attn"}) {
    VitConfig c = small_config(pool);
    c.exits = {0, 1};
    c.exit_threshold = 0.0;
    Rng rng(3);
    Vit m(c, rng);
    m.eval();
    NoGradGuard g;
    const Tensor x = images(5, 4);
    const std::vector<Tensor> all = m.forward_exits(x);
    ASSERT_EQ(all.size(), 3u);
    const Tensor z = m.forward(x);
    EXPECT_LT(testing::max_abs_diff(z, all[0]), 1e-6) << pool;
    EXPECT_GT(testing::max_abs_diff(z, all[2]), 1e-4) << pool;  // not the final classifier's
    EXPECT_EQ(m.last_layers_used(), std::vector<int64_t>(5, 1)) << pool;
  }
}

TEST(VitEarlyExit, ThresholdAboveOneIsThePlainModel) {
  VitConfig c = small_config();
  Rng rng(5);
  Vit plain(c, rng);
  c.exits = {0, 1};
  c.exit_threshold = 1.5;
  Rng rng2(6);
  Vit with_exits(c, rng2);
  with_exits.load_state_dict(plain.state_dict(), /*strict=*/false);  // the shared weights
  plain.eval();
  with_exits.eval();
  NoGradGuard g;
  const Tensor x = images(4, 7);
  EXPECT_EQ(testing::max_abs_diff(with_exits.forward(x), plain.forward(x)), 0.0);
  EXPECT_EQ(with_exits.last_layers_used(), std::vector<int64_t>(4, 3));
}

TEST(VitEarlyExit, ImagesLeaveWhereTheirCalibratedConfidenceReachesTheThreshold) {
  VitConfig c = small_config();
  c.exits = {0, 1};
  Rng rng(8);
  Vit m(c, rng);
  m.eval();
  NoGradGuard g;
  const Tensor x = images(12, 9);
  const std::vector<Tensor> all = m.forward_exits(x);
  const std::vector<double> temps = {0.05, 0.5};  // sharp at exit 0: some leave, some do not
  // Confidences of each exit under its temperature.
  std::vector<std::vector<double>> conf(2);
  for (size_t j = 0; j < 2; ++j) {
    const std::vector<double> z = all[j].to_vector<double>();
    for (int64_t i = 0; i < 12; ++i) {
      double m0 = -1e300, den = 0;
      for (int64_t k = 0; k < 10; ++k) m0 = std::max(m0, z[size_t(i * 10 + k)]);
      for (int64_t k = 0; k < 10; ++k) den += std::exp((z[size_t(i * 10 + k)] - m0) / temps[j]);
      conf[j].push_back(1 / den);
    }
  }
  std::vector<double> sorted = conf[0];
  std::sort(sorted.begin(), sorted.end());
  const double t = 0.5 * (sorted[5] + sorted[6]);  // half the images leave at exit 0
  m.set_exit_policy(t, temps);
  const std::vector<double> z = m.forward(x).to_vector<double>();
  int64_t first = 0;
  for (int64_t i = 0; i < 12; ++i) {
    const size_t at = conf[0][size_t(i)] >= t ? 0 : conf[1][size_t(i)] >= t ? 1 : 2;
    first += at == 0;
    EXPECT_EQ(m.last_layers_used()[size_t(i)], at == 2 ? 3 : int64_t(at) + 1) << "image " << i;
    const std::vector<double> want = all[at].to_vector<double>();
    for (int64_t k = 0; k < 10; ++k)
      EXPECT_NEAR(z[size_t(i * 10 + k)], want[size_t(i * 10 + k)], 1e-5) << "image " << i;
  }
  EXPECT_EQ(first, 6);
}

TEST(VitEarlyExit, TrainingAddsTheExitLosses) {
  VitConfig c = small_config();
  c.exits = {1};
  Rng rng(10);
  Vit m(c, rng);
  m.train();
  const Tensor x = images(3, 11);
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  const Tensor z = m.forward(x);
  const Tensor aux = m.exit_loss(y);
  ASSERT_TRUE(aux.defined());
  NoGradGuard g;
  m.eval();
  const std::vector<Tensor> all = m.forward_exits(x);  // no dropout: the same logits
  EXPECT_LT(testing::max_abs_diff(z, all[1]), 1e-6);
  EXPECT_NEAR(aux.item(), cross_entropy(all[0], y).item(), 1e-6);
  EXPECT_FALSE(m.exit_loss(y).defined());  // forgotten after use
}

TEST(VitEarlyExit, ConfigRefusesBadExits) {
  nlohmann::json j = small_config().to_json();
  EXPECT_FALSE(j.contains("exits"));  // files without exits keep their config
  j["exits"] = {2};
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"exits", "[0, 2)"});
  j["exits"] = {1, 0};
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"exits", "ascending"});
  j["exits"] = {0, 1};
  j["exit_temperatures"] = {1.0};
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"exit_temperatures"});
  j["exit_temperatures"] = {1.0, -1.0};
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"exit_temperatures", "positive"});
  j["exit_temperatures"] = {1.0, 2.0};
  j["exit_threshold"] = -0.5;
  testing::expect_error<ValueError>([&] { VitConfig::from_json(j); }, {"exit_threshold"});
  j["exit_threshold"] = 0.9;
  const VitConfig ok = VitConfig::from_json(j);
  EXPECT_EQ(VitConfig::from_json(ok.to_json()).to_json(), ok.to_json());
}

}  // namespace
}  // namespace focus
