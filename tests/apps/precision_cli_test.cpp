// `--precision bf16` through the `focus` binary: a bad value names itself; the dumped config
// carries the key; `bench gemm --precision bf16` runs (verified) or refuses; on a CPU with bf16 units (and the active ISA AVX-512) a tiny Fashion-MNIST run
// trains at bf16, records it in config.json and in its checkpoint, and `eval --precision bf16`
// scores its model close to `eval --precision f32`; without them (a CPU without AVX512-BF16/AMX,
// or FOCUS_FORCE_ISA=avx2|scalar, which the child inherits) train and eval refuse with a message
// naming what is missing, before writing anything.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "focus/kernels/precision.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kData = "/usr/share/datasets/fashion-mnist";

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

nlohmann::json json_of(const std::string& out) {
  const size_t at = out.find('{');
  EXPECT_NE(at, std::string::npos) << out;
  return nlohmann::json::parse(out.substr(at == std::string::npos ? 0 : at));
}

}  // namespace

TEST(PrecisionCli, ValuesAndTheDumpedConfig) {
  auto r = run("train --precision fp16 --dump-config");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "fp16")) << r.out;
  r = run("train --precision bf16 --dump-config");
  ASSERT_EQ(r.code, 0) << r.out;  // validation only: the CPU is checked when work starts
  EXPECT_EQ(json_of(r.out)["precision"], "bf16");
  r = run("eval --precision half --model /nonexistent.safetensors");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "half")) << r.out;
  // bench gemm verifies the bf16 product against the rounded inputs' before timing it.
  r = run("bench gemm --precision bf16 --sizes 96,200x72x130 --reps 3 --json");
  if (focus::bf16_hardware()) {
    ASSERT_EQ(r.code, 0) << r.out;
    const nlohmann::json j = json_of(r.out);
    EXPECT_EQ(j["precision"], "bf16");
    EXPECT_EQ(j["results"].size(), 2u);
  } else {
    EXPECT_NE(r.code, 0);
    EXPECT_TRUE(contains(r.out, "AVX512-BF16")) << r.out;
  }
}

TEST(PrecisionCli, TrainsAndEvaluatesAtBf16OrRefuses) {
  if (!fs::exists(kData + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST in " << kData;
  const std::string dir = (fs::temp_directory_path() / ("focus_precision_cli_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  const auto t = run("train --model cnn-se --model-config '{\"channels\":[4,8]}' --epochs 2 --batch 50 "
                     "--limit-train 700 --val-size 200 --threads 2 --augment false --warmup-epochs 0 "
                     "--lr 1e-2 --precision bf16 --out " +
                     dir + "/run --data-dir " + kData);
  if (!focus::bf16_hardware()) {
    EXPECT_NE(t.code, 0) << t.out;
    EXPECT_TRUE(contains(t.out, "AVX512-BF16")) << t.out;
    EXPECT_FALSE(fs::exists(dir + "/run")) << "a refused run wrote its directory";
    fs::remove_all(dir);
    return;
  }
  ASSERT_EQ(t.code, 0) << t.out;
  std::ifstream cf(dir + "/run/config.json");
  const nlohmann::json cfg = nlohmann::json::parse(cf);
  EXPECT_EQ(cfg["precision"], "bf16");
  // Resume reads the precision from the checkpoint: a third epoch would continue at bf16.
  const auto more = run("train --resume " + dir + "/run/checkpoint_last.safetensors --epochs 3 --dump-config");
  ASSERT_EQ(more.code, 0) << more.out;
  EXPECT_EQ(json_of(more.out)["precision"], "bf16");
  const std::string best = dir + "/run/model_best.safetensors";
  const auto e16 = run("eval --threads 2 --json --precision bf16 --model " + best + " --data-dir " + kData);
  const auto e32 = run("eval --threads 2 --json --precision f32 --model " + best + " --data-dir " + kData);
  ASSERT_EQ(e16.code, 0) << e16.out;
  ASSERT_EQ(e32.code, 0) << e32.out;
  const double a16 = json_of(e16.out)["accuracy"].get<double>(), a32 = json_of(e32.out)["accuracy"].get<double>();
  const double l16 = json_of(e16.out)["loss"].get<double>(), l32 = json_of(e32.out)["loss"].get<double>();
  EXPECT_GT(a32, 0.15);                     // above chance (10%) after 28 steps on 700 images
  EXPECT_NEAR(a16, a32, 0.01);              // 10,000 test images: at most 100 flip
  EXPECT_NEAR(l16, l32, 0.01 * l32);
  EXPECT_NE(l16, l32);                      // and bf16 really ran
  fs::remove_all(dir);
}
