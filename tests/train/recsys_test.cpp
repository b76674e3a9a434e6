// Task recsys: the users' sequences as trainer batches (training draws: every position's next item,
// -100 on padding; evaluation draws: the validation history and item), hand-checked; a tiny
// sasrec trained by the one Trainer on small synthetic data beats popularity on the test fold.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "focus/data/interactions.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/train/recsys_data.hpp"

namespace focus {
namespace {

Interactions hand_made() {
  Interactions d;
  d.item_names = {"<pad>", "a", "b", "c", "d", "e", "f"};
  d.user_names = {"u1", "u2"};
  d.sequences = {{1, 2, 3, 4, 5, 6}, {6, 5, 4}};
  return d;
}

TEST(SequenceData, TrainingAndEvaluationDraws) {
  const Interactions d = hand_made();
  const SequenceData data(d, 3);
  EXPECT_EQ(data.labels(), (std::vector<int64_t>{5, 5}));  // the validation items
  EXPECT_EQ(data.trainable_users(), (std::vector<int64_t>{0}));  // u2's training fold is one item
  const std::vector<int64_t> both = {0, 1};
  // Training: u1's training fold is a b c d, its last max_len + 1 = 4 items: x a b c, y b c d.
  // u2's is f alone: x f, no target.
  const Batch t = data.batch(both, BatchDraw{true, 1, 0});
  EXPECT_EQ(t.x.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.x.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 6, 0, 0}));
  EXPECT_EQ(t.y.to_vector<int64_t>(), (std::vector<int64_t>{2, 3, 4, -100, -100, -100}));
  // Evaluation: the validation history's last 3 items and the validation item.
  const Batch e = data.batch(both, BatchDraw{});
  EXPECT_EQ(e.x.to_vector<int64_t>(), (std::vector<int64_t>{2, 3, 4, 6, 0, 0}));
  EXPECT_EQ(e.y.to_vector<int64_t>(), (std::vector<int64_t>{5, 5}));
  const std::vector<int64_t> bad = {2};
  EXPECT_THROW(data.batch(bad, BatchDraw{}), ValueError);
}

TEST(RecsysRun, TinySasRecBeatsPopularityOnSyntheticData) {
  testing::TempDir dir;
  TrainConfig cfg;
  cfg.task = "recsys";
  cfg.model = "sasrec";
  cfg.interactions = "synthetic";
  cfg.synthetic = R"({"users": 300, "items": 60, "clusters": 4, "min_len": 8, "max_len": 16, "seed": 5})";
  cfg.model_config = R"({"dim": 16, "depth": 1, "heads": 2, "dropout": 0.1})";
  cfg.max_len = 16;
  cfg.epochs = 30;  // about 1 s
  cfg.batch = 32;
  cfg.lr = 5e-3;
  cfg.warmup_epochs = 0.5;
  cfg.out = dir.str();
  const nlohmann::json r = run_recsys(cfg);
  const double model = r["model"]["hr"], pop = r["popularity"]["hr"], oracle = r["oracle"]["hr"];
  EXPECT_GT(model, pop + 0.15) << r.dump(2);  // 0.64 against 0.36 when written
  EXPECT_LE(model, oracle + 0.08) << r.dump(2);  // the oracle's expectation bounds it (noise: 300 users)
  EXPECT_GT(r["model"]["sampled_hr"].get<double>(), model);  // the sampled figure overstates
  EXPECT_TRUE(std::filesystem::exists(dir.file("model_best.safetensors")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("interactions.csv")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("test_metrics.json")));
  EXPECT_GT(r["train"]["targets_per_s"].get<double>(), 0.0);
}

}  // namespace
}  // namespace focus
