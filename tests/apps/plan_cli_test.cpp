// `focus plan` end to end through the `focus` binary on a tiny cnn-se run (Fashion-MNIST, 700
// images): every variant measured in its own process (latency, peak RSS) and scored on the run's
// validation split, the front and the choice printed as JSON, the serve config it writes accepted
// by `focus serve --dump-config`, the SVG written; a budget nothing meets exits 3 naming the
// closest variant and writes no config.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kData = "/usr/share/datasets/fashion-mnist";

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

TEST(PlanCli, MeasuresVariantsPicksWithinTheBudgetAndRefusesTheImpossible) {
  if (!fs::exists(kData + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST in " << kData;
  const std::string dir = (fs::temp_directory_path() / ("focus_plan_cli_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  const auto t = run("train --model cnn-se --model-config '{\"channels\":[4,8]}' --epochs 1 --batch 50 "
                     "--limit-train 700 --val-size 200 --threads 2 --augment false --out " + dir +
                     "/run --data-dir " + kData);
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string model = dir + "/run/model_best.safetensors";
  const std::string common = " --model " + model + " --data-dir " + kData +
                             " --weights f32,int8 --threads 1 --batch 1,4 --seconds 0.05";
  const auto p = run("plan --json --budget rss_mb=100000 --name tiny -o " + dir + "/serve.json --svg " + dir +
                     "/front.svg" + common + " 2>/dev/null");
  ASSERT_EQ(p.code, 0) << p.out;
  const nlohmann::json j = nlohmann::json::parse(p.out.substr(p.out.find('{')));
  EXPECT_EQ(j["val_images"], 200);  // the run's split, from its config.json
  ASSERT_EQ(j["variants"].size(), 4u);
  int front = 0;
  for (const auto& v : j["variants"]) {
    EXPECT_GT(v["batch_p50_ms"].get<double>(), 0) << v.dump();
    EXPECT_GE(v["batch_p99_ms"].get<double>(), v["batch_p50_ms"].get<double>()) << v.dump();
    EXPECT_GT(v["rss_mb"].get<double>(), 5) << v.dump();  // a whole process: libraries, model, batch
    EXPECT_GT(v["accuracy"].get<double>(), 0) << v.dump();
    EXPECT_LE(v["accuracy"].get<double>(), 1) << v.dump();
    // Accuracy belongs to the weights: the same for every thread count and batch size.
    EXPECT_EQ(v["accuracy"], j["variants"][v["weights"] == "f32" ? 0 : 2]["accuracy"]) << v.dump();
    EXPECT_TRUE(v["within"].get<bool>());
    front += v["on_front"].get<bool>();
  }
  EXPECT_GE(front, 1);
  // The choice is the most accurate variant (all are within this budget).
  double best = 0;
  for (const auto& v : j["variants"]) best = std::max(best, v["accuracy"].get<double>());
  EXPECT_EQ(j["chosen"]["accuracy"].get<double>(), best);
  // The config starts a server with the chosen variant.
  std::ofstream(dir + "/keys.json") << "{\"keys\": []}";
  const auto d = run("serve --config " + dir + "/serve.json --keys " + dir + "/keys.json --dump-config");
  ASSERT_EQ(d.code, 0) << d.out;
  const nlohmann::json cfg = nlohmann::json::parse(d.out.substr(d.out.find('{')));
  EXPECT_EQ(cfg["image-weights"], j["chosen"]["weights"]);
  EXPECT_EQ(cfg["max-batch"], j["chosen"]["batch"]);
  EXPECT_EQ(cfg["threads"], j["chosen"]["threads"]);
  EXPECT_EQ(cfg["model"][0], "tiny=" + fs::absolute(model).string());
  EXPECT_EQ(cfg["slo-p99-ms"], 0);  // no latency budget: no SLO
  // With a p99 budget the config also sets the SLO and its ladder, starting at the choice.
  const auto ps = run("plan --json --budget p99_ms=100000 -o " + dir + "/slo.json" + common + " 2>/dev/null");
  ASSERT_EQ(ps.code, 0) << ps.out;
  const nlohmann::json js = nlohmann::json::parse(ps.out.substr(ps.out.find('{')));
  const auto ds = run("serve --config " + dir + "/slo.json --keys " + dir + "/keys.json --dump-config");
  ASSERT_EQ(ds.code, 0) << ds.out;
  const nlohmann::json cs = nlohmann::json::parse(ds.out.substr(ds.out.find('{')));
  EXPECT_EQ(cs["slo-p99-ms"], 100000);
  ASSERT_GE(cs["slo-ladder"].size(), 1u);
  EXPECT_EQ(cs["slo-ladder"][0], js["chosen"]["weights"]);
  EXPECT_EQ(cs["slo-accuracy"][0], js["chosen"]["accuracy"]);
  std::ifstream svg(dir + "/front.svg");
  const std::string s((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(s.find("int8 t1 b4"), std::string::npos);
  // Nothing can answer in a nanosecond: refused, the closest named, no config written.
  fs::remove(dir + "/serve.json");
  const auto no = run("plan --budget p99_ms=0.000001 -o " + dir + "/serve.json" + common + " 2>&1");
  EXPECT_EQ(no.code, 3) << no.out;
  EXPECT_NE(no.out.find("no variant meets the budget"), std::string::npos) << no.out;
  EXPECT_NE(no.out.find("the closest is"), std::string::npos) << no.out;
  EXPECT_FALSE(fs::exists(dir + "/serve.json"));
  // A candidate file (here a copy of the model, as a pruned or early-exit file would be) adds
  // its variants under its name; the config serves the chosen file.
  fs::copy_file(model, dir + "/twin.safetensors");
  const auto pc = run("plan --json --budget rss_mb=100000 -o " + dir + "/cand.json --candidate " + dir +
                      "/twin.safetensors" + common + " 2>/dev/null");
  ASSERT_EQ(pc.code, 0) << pc.out;
  const nlohmann::json jc = nlohmann::json::parse(pc.out.substr(pc.out.find('{')));
  ASSERT_EQ(jc["variants"].size(), 8u);
  EXPECT_EQ(jc["variants"][4]["name"], "twin f32 t1 b1");
  EXPECT_EQ(jc["variants"][4]["file"], 1);
  EXPECT_EQ(jc["variants"][4]["accuracy"], jc["variants"][0]["accuracy"]);  // the same weights
  const auto dc = run("serve --config " + dir + "/cand.json --keys " + dir + "/keys.json --dump-config");
  ASSERT_EQ(dc.code, 0) << dc.out;
  const std::string served = jc["chosen"]["file"] == 1 ? dir + "/twin.safetensors" : model;
  EXPECT_NE(dc.out.find(fs::absolute(served).string()), std::string::npos) << dc.out;
  const auto nc = run("plan --budget rss_mb=100000 --candidate " + dir + "/keys.json" + common + " 2>&1");
  EXPECT_NE(nc.code, 0);
  EXPECT_NE(nc.out.find("keys.json"), std::string::npos) << nc.out;
  // A bad budget is a clear error.
  const auto bad = run("plan --budget p95_ms=3" + common + " 2>&1");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("unknown key 'p95_ms'"), std::string::npos) << bad.out;
  fs::remove_all(dir);
}

}  // namespace
