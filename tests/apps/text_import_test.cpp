// `focus text-import` end to end: a corpus that is not fetched and an unknown corpus exit non-zero
// naming the problem; the topic import from a small hand-made data cache writes the same files
// twice (reproducible) with the documented layout.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

struct Dir {
  fs::path path = fs::temp_directory_path() / ("focus_text_import_" + std::to_string(::getpid()));
  Dir() { fs::remove_all(path); fs::create_directories(path); }
  ~Dir() { fs::remove_all(path); }
};

}  // namespace

TEST(TextImport, MissingCorpusAndUnknownName) {
  Dir d;
  auto r = run("text-import spam --data-dir " + (d.path / "empty").string() + " --out " + (d.path / "o").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("fetch-data"), std::string::npos) << r.out;
  r = run("text-import topic --data-dir " + (d.path / "empty").string() + " --out " + (d.path / "o").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("ReutersCorn-train.arff"), std::string::npos) << r.out;
  r = run("text-import news --out " + (d.path / "o").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("news"), std::string::npos) << r.out;
}

TEST(TextImport, TopicFilesAreReproducible) {
  Dir d;
  fs::create_directories(d.path / "cache/topic");
  const std::string header = "@relation r\n@attribute Text string\n@attribute class-att {0,1}\n@data\n";
  for (const char* topic : {"Corn", "Grain"}) {
    std::string train = header, test = header;
    for (int i = 0; i < 40; ++i) train += "'wheat and maize report " + std::to_string(i) + "'," + (i % 4 ? "0" : "1") + "\n";
    for (int i = 0; i < 8; ++i) test += "'test doc " + std::to_string(i) + "'," + (i % 4 ? "0" : "1") + "\n";
    std::ofstream(d.path / "cache/topic" / (std::string("Reuters") + topic + "-train.arff")) << train;
    std::ofstream(d.path / "cache/topic" / (std::string("Reuters") + topic + "-test.arff")) << test;
  }
  const std::string base = "text-import topic --seed 3 --data-dir " + (d.path / "cache").string() + " --out ";
  auto r = run(base + (d.path / "a").string());
  ASSERT_EQ(r.code, 0) << r.out;
  r = run(base + (d.path / "b").string());
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* f : {"corn/train.tsv", "corn/valid.tsv", "corn/test.tsv", "grain/valid.tsv"}) {
    EXPECT_FALSE(slurp(d.path / "a" / f).empty()) << f;
    EXPECT_EQ(slurp(d.path / "a" / f), slurp(d.path / "b" / f)) << f;
  }
  EXPECT_NE(slurp(d.path / "a/grain/test.tsv").find("grain\ttest doc 0\n"), std::string::npos);
  EXPECT_NE(slurp(d.path / "a/import.json").find("\"valid_positive\": 1"), std::string::npos)
      << slurp(d.path / "a/import.json");
}
