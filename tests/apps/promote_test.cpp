// `focus promote`, the gate between a model fine-tuned on reviewed labels and the served one: a
// trained candidate replaces an untrained served file (byte for byte, atomically), an untrained
// candidate does not replace a trained one (exit 3, the file unchanged), --min-gain raises the bar,
// and bad files are clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "infer/infer_fixtures.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;
namespace {

const std::string kData = "/usr/share/datasets/fashion-mnist";

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args + " 2>&1");
}
std::string bytes_of(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
nlohmann::json json_of(const std::string& out) {
  const size_t at = out.find('{');
  return at == std::string::npos ? nlohmann::json() : nlohmann::json::parse(out.substr(at), nullptr, false);
}

TEST(Promote, OnlyAnAtLeastAsAccurateCandidateReplacesTheServedModel) {
  ASSERT_TRUE(fs::exists(kData + "/train-images-idx3-ubyte.gz")) << "no Fashion-MNIST in " << kData;
  const fs::path dir = fs::path(::testing::TempDir()) / "promote";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto t = run("train --model cnn-se --model-config '{\"channels\":[4,8]}' --epochs 2 --batch 50 "
                     "--limit-train 700 --val-size 200 --threads 2 --augment false --out " + (dir / "run").string() +
                     " --data-dir " + kData);
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string trained = (dir / "run" / "model_best.safetensors").string();
  const std::string untrained = (dir / "untrained.safetensors").string();
  focus::testing::save_tiny_image_model(untrained);
  const std::string split = " --val-size 200 --limit-train 700 --data-dir " + kData + " --threads 2 --json";

  // A trained candidate over an untrained served file: promoted, the served file is the candidate.
  const std::string served = (dir / "served.safetensors").string();
  fs::copy_file(untrained, served);
  auto r = run("promote --candidate " + trained + " --served " + served + split);
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = json_of(r.out);
  EXPECT_EQ(j["promoted"], true);
  EXPECT_GT(j["candidate_accuracy"].get<double>(), j["served_accuracy"].get<double>());
  EXPECT_EQ(j["validation_images"], 200);
  EXPECT_EQ(bytes_of(served), bytes_of(trained));

  // The other way round: refused, exit 3, the served file untouched.
  r = run("promote --candidate " + untrained + " --served " + served + split);
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_EQ(json_of(r.out)["promoted"], false);
  EXPECT_EQ(bytes_of(served), bytes_of(trained));
  // Equal models pass at --min-gain 0 and fail at a positive one.
  EXPECT_EQ(run("promote --candidate " + trained + " --served " + served + split).code, 0);
  EXPECT_EQ(run("promote --candidate " + trained + " --served " + served + split + " --min-gain 0.01").code, 3);

  r = run("promote --candidate " + trained + " --served " + (dir / "none.safetensors").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("no served model file"), std::string::npos) << r.out;
  std::ofstream(dir / "junk.safetensors") << "not a model";
  r = run("promote --candidate " + (dir / "junk.safetensors").string() + " --served " + served + split);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(bytes_of(served), bytes_of(trained));
}

}  // namespace
