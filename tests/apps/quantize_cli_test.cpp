// `focus quantize` and `--weights int8` end to end through the `focus` binary on a tiny run
// (Fashion-MNIST, 700 images): quantize prints the per-layer table and the validation drop as
// JSON, writes the plan when the drop is within --max-drop, and `eval` runs the written file with
// int8 weights by default (auto) and the original with f32; eval --weights int8 on the original
// gives the same accuracy as the all-int8 plan; a refusal exits 3 and writes nothing. (The
// refusal itself is forced deterministically in tests/infer/quantize_test.cpp; here it is
// checked whenever the real drop exceeds 0.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
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

nlohmann::json json_of(const std::string& out) {
  const size_t at = out.find('{');
  EXPECT_NE(at, std::string::npos) << out;
  return nlohmann::json::parse(out.substr(at == std::string::npos ? 0 : at));
}

TEST(QuantizeCli, PlanWrittenAndRunByEval) {
  if (!fs::exists(kData + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST in " << kData;
  const std::string dir = (fs::temp_directory_path() / ("focus_quantize_cli_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  const auto t = run("train --model cnn-se --model-config '{\"channels\":[4,8]}' --epochs 1 --batch 50 "
                     "--limit-train 700 --val-size 200 --threads 2 --augment false --out " + dir +
                     "/run --data-dir " + kData);
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string best = dir + "/run/model_best.safetensors", q = dir + "/q.safetensors";
  const auto r = run("quantize --threads 2 --json --calib 64 --max-drop 100 --model " + best + " -o " + q +
                     " --data-dir " + kData);
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = json_of(r.out);
  EXPECT_TRUE(j["accepted"].get<bool>());
  EXPECT_EQ(j["val_images"], 200);  // the run's split, from its config.json
  EXPECT_EQ(j["calib_images"], 64);
  ASSERT_EQ(j["layers"].size(), 9u);  // 4 convs, 4 SE linears, the head
  for (const auto& l : j["layers"]) EXPECT_LT(l["rel_l2"].get<double>(), 0.05) << l.dump();
  ASSERT_TRUE(fs::exists(q));
  EXPECT_TRUE(focus::load_model(q).info.quantized);
  const auto eq = run("eval --threads 2 --json --model " + q + " --data-dir " + kData);
  ASSERT_EQ(eq.code, 0) << eq.out;
  EXPECT_EQ(json_of(eq.out)["weights"], "int8");
  const auto e8 = run("eval --threads 2 --json --weights int8 --model " + best + " --data-dir " + kData);
  const auto e32 = run("eval --threads 2 --json --model " + best + " --data-dir " + kData);
  ASSERT_EQ(e8.code, 0) << e8.out;
  ASSERT_EQ(e32.code, 0) << e32.out;
  EXPECT_EQ(json_of(e32.out)["weights"], "f32");
  // Every layer int8 either way: the same predictions, the same accuracy.
  EXPECT_EQ(json_of(e8.out)["accuracy"], json_of(eq.out)["accuracy"]);
  // --max-drop 0: refused (exit 3, nothing written) exactly when the plan loses accuracy.
  const std::string q0 = dir + "/q0.safetensors";
  const auto r0 = run("quantize --threads 2 --json --calib 64 --max-drop 0 --model " + best + " -o " + q0 +
                      " --data-dir " + kData);
  const nlohmann::json j0 = json_of(r0.out);
  const bool lost = j0["drop_points"].get<double>() > 0;
  EXPECT_EQ(r0.code, lost ? 3 : 0) << r0.out;
  EXPECT_EQ(fs::exists(q0), !lost);
  EXPECT_EQ(j0["accepted"].get<bool>(), !lost);
  fs::remove_all(dir);
}

}  // namespace
