// `focus train --task recsys` end to end: a small hand-made ratings.dat trains and prints the
// HR@10 / NDCG@10 table (sasrec, Markov, popularity) and writes test_metrics.json; a malformed
// ratings.dat and a missing --interactions stop with a message naming the problem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_command.hpp"

namespace fs = std::filesystem;
using focus::testing::run_command;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

class RecsysCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("focus_recsys_cli_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // 40 users walking a cycle of 12 movies (ids 100, 110, ...) from different starts, 8 ratings each.
    std::ofstream f(path("ratings.dat"));
    for (int u = 1; u <= 40; ++u)
      for (int t = 0; t < 8; ++t) f << u << "::" << 100 + 10 * ((u + t) % 12) << "::" << 1 + t % 5 << "::" << 1000 + t << "\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string focus(const std::string& args) const { return std::string(FOCUS_BINARY) + " " + args; }
  std::string dir_;
};

}  // namespace

TEST_F(RecsysCli, TrainsOnRatingsDatAndPrintsTheTable) {
  const auto r = run_command(focus("train --task recsys --interactions " + path("ratings.dat") +
                                   " --epochs 3 --batch 8 --threads 1 --model-config '{\"dim\": 16, \"depth\": 1}'"
                                   " --out " + path("run")));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "40 users, 12 items, 320 interactions")) << r.out;
  for (const char* row : {"sasrec", "markov", "popularity", "HR@10"}) EXPECT_TRUE(contains(r.out, row)) << row << "\n" << r.out;
  EXPECT_FALSE(contains(r.out, "oracle")) << r.out;  // a file has no known best
  std::ifstream m(path("run/test_metrics.json"));
  const nlohmann::json j = nlohmann::json::parse(m);
  // The cycle makes the next movie certain: Markov ranks it first for every user.
  EXPECT_DOUBLE_EQ(j["markov"]["hr"].get<double>(), 1.0);
  EXPECT_EQ(j["data"]["users"], 40);
}

TEST_F(RecsysCli, BadInputStopsWithAClearMessage) {
  std::ofstream(path("bad.dat")) << "1::100::5::1\n1::110::5\n";
  const auto bad = run_command(focus("train --task recsys --interactions " + path("bad.dat") + " --out " + path("b")));
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.out, "bad.dat:2: expected UserID::MovieID::Rating::Timestamp")) << bad.out;
  const auto none = run_command(focus("train --task recsys --out " + path("n")));
  EXPECT_NE(none.code, 0);
  EXPECT_TRUE(contains(none.out, "--task recsys needs --interactions")) << none.out;
}
