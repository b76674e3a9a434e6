// `focus prune-heads` and `focus early-exit` end to end through the `focus` binary on a tiny vit
// run (Fashion-MNIST, 700 images): prune-heads removes the asked share of heads, tables a row per
// head removed plus the fine-tuned one and writes a file `eval` runs; early-exit adds an exit,
// fine-tunes jointly, and at threshold 0 every image stops after the first block while above 1
// all run both blocks with the unchanged accuracy; its output file runs in `eval`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "focus/infer/model_file.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kData = "/usr/share/datasets/fashion-mnist";

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(CompressCli, PruneHeadsAndEarlyExitOnATinyVit) {
  if (!fs::exists(kData + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST in " << kData;
  const std::string dir = (fs::temp_directory_path() / ("focus_compress_cli_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  const auto t = run("train --model vit --model-config '{\"dim\":16,\"heads\":4,\"depth\":2,\"patch\":7}' "
                     "--epochs 1 --batch 50 --limit-train 700 --val-size 200 --threads 2 --augment false --out " +
                     dir + "/run --data-dir " + kData);
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string best = dir + "/run/model_best.safetensors";

  const std::string pruned = dir + "/pruned.safetensors";
  const auto p = run("prune-heads --threads 2 --fraction 0.5 --finetune-epochs 1 --finetune-images 100 "
                     "--time-images 8 --time-reps 1 --model " + best + " -o " + pruned + " --json " + dir +
                     "/prune.json --data-dir " + kData);
  ASSERT_EQ(p.code, 0) << p.out;
  const nlohmann::json pj = read_json(dir + "/prune.json");
  EXPECT_EQ(pj["heads"], 8);
  EXPECT_EQ(pj["val_images"], 200);  // the run's split, from its config.json
  ASSERT_EQ(pj["rows"].size(), 6u);  // 0..4 heads removed, then the fine-tuned row
  for (int k = 0; k <= 4; ++k) EXPECT_EQ(pj["rows"][k]["heads_removed"], k);
  EXPECT_TRUE(pj["rows"][5]["fine_tuned"].get<bool>());
  EXPECT_EQ(pj["rows"][0]["val_accuracy"], pj["val_accuracy_unpruned"]);  // nothing removed yet
  const focus::LoadedModel lp = focus::load_model(pruned);
  const nlohmann::json lh = lp.model->config().at("layer_heads");
  EXPECT_EQ(lh[0].get<int>() + lh[1].get<int>(), 4);
  const auto ep = run("eval --threads 2 --json --model " + pruned + " --data-dir " + kData);
  ASSERT_EQ(ep.code, 0) << ep.out;

  const std::string exits = dir + "/exits.safetensors";
  const auto e = run("early-exit --threads 2 --add-exits 0 --finetune-epochs 1 --finetune-images 100 "
                     "--thresholds 0,2 --threshold 0.8 --time-images 8 --time-reps 1 --model " + best + " -o " +
                     exits + " --json " + dir + "/exit.json --data-dir " + kData);
  ASSERT_EQ(e.code, 0) << e.out;
  const nlohmann::json ej = read_json(dir + "/exit.json");
  ASSERT_EQ(ej["rows"].size(), 2u);
  EXPECT_EQ(ej["rows"][0]["mean_blocks"], 1.0);  // threshold 0: all leave after block 0
  EXPECT_EQ(ej["rows"][1]["mean_blocks"], 2.0);  // threshold 2: none leaves
  EXPECT_EQ(ej["rows"][1]["val_accuracy"], ej["val_accuracy_full"]);
  const focus::LoadedModel le = focus::load_model(exits);
  EXPECT_EQ(le.model->config().at("exit_threshold"), 0.8);
  const auto ee = run("eval --threads 2 --json --model " + exits + " --data-dir " + kData);
  ASSERT_EQ(ee.code, 0) << ee.out;
  fs::remove_all(dir);
}

}  // namespace
