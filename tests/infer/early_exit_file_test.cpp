// A vit file with early exits (models/vit.hpp "exits") through the inference path: it loads into
// the ImagePredictor (what `focus serve` and `focus eval` run), which then exits early with the
// threshold and temperatures written in the file; a threshold above 1 gives the final
// classifier's logits.
#include <gtest/gtest.h>

#include "data/temp_dir.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/models/vit.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/gradcheck.hpp"

namespace focus {
namespace {

TEST(EarlyExitFile, LoadsAndExitsWithTheFilesThreshold) {
  testing::TempDir dir;
  VitConfig c;
  c.dim = 16;
  c.heads = 2;
  c.depth = 3;
  c.patch = 7;
  c.exits = {0};
  c.exit_threshold = 0.0;
  c.exit_temperatures = {1.7};
  Rng rng(12);
  Vit m(c, rng);
  m.eval();
  save_model(dir.file("exit0.safetensors"), m, testing::tiny_image_info());
  m.set_exit_policy(2.0, {1.7});
  save_model(dir.file("never.safetensors"), m, testing::tiny_image_info());

  Rng prng(13);
  const Tensor pixels = Tensor::rand({4, 1, 28, 28}, prng);
  const ImagePredictor early(dir.file("exit0.safetensors"));
  const ImagePredictor never(dir.file("never.safetensors"));
  EXPECT_EQ(early.model().config().at("exit_temperatures"), nlohmann::json({1.7}));
  NoGradGuard g;
  const std::vector<Tensor> all = m.forward_exits(early.normalized(pixels));
  EXPECT_LT(testing::max_abs_diff(early.logits(pixels), all[0]), 1e-5);
  EXPECT_LT(testing::max_abs_diff(never.logits(pixels), all[1]), 1e-5);
  EXPECT_GT(testing::max_abs_diff(early.logits(pixels), never.logits(pixels)), 1e-4);
  EXPECT_EQ(dynamic_cast<Vit&>(early.model()).last_layers_used(), std::vector<int64_t>(4, 1));
}

}  // namespace
}  // namespace focus
