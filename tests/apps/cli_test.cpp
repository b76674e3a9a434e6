// The `focus` binary end to end on bad input: unknown flags and subcommands, missing and corrupt
// model files, bad option values — each must exit non-zero with one clear line naming the problem.
// Also --help everywhere, --dump-config precedence (defaults < --config < flags), bench gemm JSON
// (the int8 kernel included), --weights values.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

using Result = focus::testing::CommandResult;

Result run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("focus_cli_" + std::to_string(::getpid()) + "_" + name)).string();
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST(Cli, HelpEverywhere) {
  for (const char* cmd : {"--help", "train --help", "eval --help", "predict --help", "demo --help",
                          "bench gemm --help", "bench infer --help", "bench text --help", "quantize --help"}) {
    const Result r = run(cmd);
    EXPECT_EQ(r.code, 0) << cmd << "\n" << r.out;
    EXPECT_TRUE(contains(r.out, "Usage")) << cmd << "\n" << r.out;
  }
}

TEST(Cli, UnknownFlagsAndCommands) {
  Result r = run("train --frobnicate 3");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "frobnicate")) << r.out;
  r = run("launch");
  EXPECT_NE(r.code, 0);
  r = run("");
  EXPECT_NE(r.code, 0);
}

TEST(Cli, BadValuesNameTheField) {
  Result r = run("train --model resnet --dump-config");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "resnet")) << r.out;
  r = run("train --model resnet --epochs 1 --data-dir /nonexistent");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "resnet")) << r.out;
  r = run("train --epochs 0");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "epochs")) << r.out;
  r = run("train --model-config '{\"dim\": ' --epochs 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "model-config")) << r.out;
  r = run("bench gemm --sizes 12a");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "12a")) << r.out;
}

TEST(Cli, MissingAndCorruptModelFiles) {
  Result r = run("eval --model /nonexistent/model.safetensors");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "/nonexistent/model.safetensors")) << r.out;
  const std::string junk = temp_path("junk.safetensors");
  std::ofstream(junk) << "this is not a model";
  r = run("eval --model " + junk);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, junk)) << r.out;
  r = run("predict --model " + junk + " --input /nonexistent.png");
  EXPECT_NE(r.code, 0);
  r = run("quantize --model " + junk + " -o /nonexistent/q.safetensors --data-dir /nonexistent");
  EXPECT_NE(r.code, 0);
  r = run("predict --weights int4 --model " + junk + " --input /nonexistent.png");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "--weights")) << r.out;
  r = run("quantize --model " + junk + " -o q.safetensors --max-drop -1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.out, "--max-drop")) << r.out;
  fs::remove(junk);
}

TEST(Cli, ConfigFilePrecedence) {
  const std::string cfg = temp_path("cfg.json");
  std::ofstream(cfg) << R"({"epochs": 7, "lr": 0.01, "model": "cnn-se"})";
  const Result r = run("train --config " + cfg + " --lr 0.5 --dump-config");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["epochs"], 7);         // from the file
  EXPECT_EQ(j["lr"], 0.5);           // the flag wins
  EXPECT_EQ(j["model"], "cnn-se");   // from the file
  EXPECT_EQ(j["batch"], 128);        // default
  std::ofstream(cfg) << R"({"epochz": 7})";
  const Result bad = run("train --config " + cfg + " --dump-config");
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.out, "epochz")) << bad.out;
  fs::remove(cfg);
}

TEST(Cli, BenchGemmJson) {
  const Result r = run("bench gemm --sizes 64,96x32x48 --reps 3 --json 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_GT(j["results"][0]["gflops"].get<double>(), 0.0);
  EXPECT_GT(j["fma_peak_gflops"].get<double>(), 0.0);
  EXPECT_EQ(j["trans"], "nn");
  // Transposed operands (x @ W^T, the Linear forward; A^T @ B, its weight gradient) are verified
  // against a dot product before they are timed, as the plain product.
  for (const char* t : {"nt", "tn", "tt"}) {
    const Result rt = run(std::string("bench gemm --sizes 96x32x48 --reps 2 --json --trans ") + t +
                          " 2>/dev/null");
    ASSERT_EQ(rt.code, 0) << t << ": " << rt.out;
    EXPECT_EQ(nlohmann::json::parse(rt.out)["trans"], t);
  }
  const Result bad = run("bench gemm --trans xn");
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.out, "trans")) << bad.out;
  // The packed-panel kernels of inference weights, verified the same way (x @ W^T only).
  for (const char* k : {"panels-f32", "panels-bf16", "int8"}) {
    const Result rp = run(std::string("bench gemm --sizes 16x100x67,1x33x64 --reps 2 --json --trans nt "
                                      "--kernel ") + k + " 2>/dev/null");
    ASSERT_EQ(rp.code, 0) << k << ": " << rp.out;
    const auto jp = nlohmann::json::parse(rp.out);
    EXPECT_EQ(jp["kernel"], k);
    EXPECT_EQ(jp["results"].size(), 2u);
  }
  const Result nn = run("bench gemm --sizes 16x100x67 --kernel panels-bf16");
  EXPECT_NE(nn.code, 0);
  EXPECT_TRUE(contains(nn.out, "--trans nt")) << nn.out;
}
