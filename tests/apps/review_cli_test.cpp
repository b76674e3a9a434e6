// Calibration and the review simulator end to end through the `focus` binary on a tiny run
// (Fashion-MNIST, 700 images): `focus train` writes a fitted temperature into model_best and
// says so; `focus calibrate` refits the same temperature from the run's config.json; `focus eval`
// reports ECE and NLL before and after and writes the reliability JSON and SVG; `focus
// simulate-review` writes JSON and a self-contained HTML page whose numbers hold together
// (nothing lost in the capacity run, budget curves from 0 to 50%). Bad options fail clearly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "focus/infer/model_file.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kData = "/usr/share/datasets/fashion-mnist";

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

std::string read_text(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The JSON object printed last on stdout (the commands print one document).
nlohmann::json json_of(const std::string& out) {
  const size_t at = out.find('{');
  EXPECT_NE(at, std::string::npos) << out;
  return nlohmann::json::parse(out.substr(at == std::string::npos ? 0 : at));
}

class ReviewCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kData + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST in " << kData;
    dir_ = (fs::temp_directory_path() / ("focus_review_cli_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(ReviewCli, TrainCalibrateEvalSimulate) {
  const auto t = run("train --model cnn-se --model-config '{\"channels\":[4,8]}' --epochs 1 --batch 50 "
                     "--limit-train 700 --val-size 200 --threads 2 --augment false --out " + dir_ +
                     "/run --data-dir " + kData);
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("temperature"), std::string::npos) << t.out;
  const std::string best = dir_ + "/run/model_best.safetensors";
  const double T = focus::load_model(best).info.temperature;
  EXPECT_NE(T, 1.0);
  // Refit from the run's config.json (limit-train 700, val-size 200): the same split, the same T.
  const auto c = run("calibrate --threads 2 --json --model " + best + " -o " + dir_ + "/cal.safetensors --data-dir " + kData);
  ASSERT_EQ(c.code, 0) << c.out;
  const nlohmann::json cj = json_of(c.out);
  EXPECT_EQ(cj["validation_images"], 200);
  EXPECT_NEAR(cj["temperature"].get<double>(), T, 1e-9 * T);
  EXPECT_EQ(focus::load_model(dir_ + "/cal.safetensors").info.temperature, cj["temperature"].get<double>());
  EXPECT_LE(cj["after"]["nll"].get<double>(), cj["before"]["nll"].get<double>());
  // eval: calibration before/after, the reliability files.
  const auto e = run("eval --threads 2 --json --model " + best + " --reliability " + dir_ + "/rel.json --data-dir " + kData);
  ASSERT_EQ(e.code, 0) << e.out;
  const nlohmann::json ej = json_of(e.out);
  ASSERT_TRUE(ej.contains("calibration"));
  EXPECT_EQ(ej["calibration"]["after"]["temperature"].get<double>(), T);
  EXPECT_EQ(ej["calibration"]["before"]["bins"].size(), 15u);
  EXPECT_EQ(nlohmann::json::parse(read_text(dir_ + "/rel.json"))["after"]["temperature"].get<double>(), T);
  EXPECT_EQ(read_text(dir_ + "/rel.svg").rfind("<svg xmlns=", 0), 0u);
  // simulate-review: JSON and page.
  const auto s = run("simulate-review --threads 2 --json --model " + best + " --limit 600 --calib 200 "
                     "--risk-splits 5 --rate 400 --budget 0.1 --out " + dir_ + "/sim --data-dir " + kData);
  ASSERT_EQ(s.code, 0) << s.out;
  const nlohmann::json sj = json_of(s.out);
  EXPECT_EQ(sj["items"], 600);
  EXPECT_TRUE(sj["headline"].is_null());
  EXPECT_EQ(sj["budget_curve"]["budgets"].size(), 26u);
  for (const char* p : {"random", "least-confidence", "margin", "entropy", "capacity", "capacity+audit"}) {
    ASSERT_TRUE(sj["budget_curve"]["accuracy"].contains(p)) << p;
    // A perfect reviewer: reviewing more never hurts the offline policies; 0% = the model alone.
    EXPECT_NEAR(sj["budget_curve"]["accuracy"][p][0].get<double>(), sj["model_accuracy"].get<double>(), 1e-12) << p;
  }
  const auto& lc = sj["budget_curve"]["accuracy"]["least-confidence"];
  for (size_t i = 1; i < lc.size(); ++i) EXPECT_GE(lc[i].get<double>(), lc[i - 1].get<double>());
  EXPECT_TRUE(sj["capacity_run"]["nothing_lost"].get<bool>());
  EXPECT_LE(sj["capacity_run"]["max_queue"].get<int64_t>(), 50);
  EXPECT_EQ(sj["risk_target"]["splits"], 5);
  const std::string html = read_text(dir_ + "/sim/review.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);  // self-contained: nothing to fetch
  EXPECT_EQ(nlohmann::json::parse(read_text(dir_ + "/sim/review.json"))["items"], 600);
  // --policy picks the headline: margin at the budget; risk at --epsilon on the rest.
  auto h = run("simulate-review --threads 2 --json --model " + best + " --limit 300 --calib 100 "
               "--risk-splits 0 --policy margin --data-dir " + kData);
  ASSERT_EQ(h.code, 0) << h.out;
  nlohmann::json hj = json_of(h.out);
  EXPECT_EQ(hj["headline"]["policy"], "margin");
  EXPECT_EQ(hj["headline"]["system_accuracy"], hj["at_budget"]["margin"]);
  h = run("simulate-review --threads 2 --model " + best + " --limit 300 --calib 100 --risk-splits 0 "
          "--policy risk --epsilon 0.04 --data-dir " + kData);
  ASSERT_EQ(h.code, 0) << h.out;
  EXPECT_NE(h.out.find("risk policy, epsilon 0.040"), std::string::npos) << h.out;
}

TEST_F(ReviewCli, BadOptions) {
  auto r = run("simulate-review --model /nonexistent.safetensors");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("/nonexistent.safetensors"), std::string::npos) << r.out;
  r = run("simulate-review --model x --stream drifted");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("drifted"), std::string::npos) << r.out;
  r = run("simulate-review --model x --stream shifted --shift blur");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("blur"), std::string::npos) << r.out;
  r = run("calibrate --model /nonexistent.safetensors -o /tmp/x.safetensors");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("/nonexistent.safetensors"), std::string::npos) << r.out;
}

}  // namespace
