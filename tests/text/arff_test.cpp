// The ARFF text reader (text/arff.hpp) and the topic splits (text/topic_corpus.hpp): escapes,
// comments, either attribute order; malformed headers and rows are FormatErrors naming the file
// and the line; the Corn / Grain splits are stratified and reproducible; with the weka data
// fetched (tools/fetch-data.sh), the real files have the documented counts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/arff.hpp"
#include "focus/text/topic_corpus.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;

namespace {
const char* kHeader = "@relation 'tiny corpus'\n\n@attribute Text string\n@attribute class-att {0,1}\n\n@data\n";
}

TEST(Arff, ReadsQuotedTextsWithEscapes) {
  const LabelledFile f = parse_arff_texts(
      std::string("% a comment\n") + kHeader +
          "'CORN UP\\nfarmers\\' \"view\" \\\\ ok',1\n"
          "\n"
          "\"double, quoted\" , 0\n",
      "t.arff");
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(f.rows[0].text, "CORN UP\nfarmers' \"view\" \\ ok");
  EXPECT_EQ(f.rows[0].label, "1");
  EXPECT_EQ(f.rows[0].line, 8);
  EXPECT_EQ(f.rows[1].text, "double, quoted");
  EXPECT_EQ(f.rows[1].label, "0");
  EXPECT_EQ(f.blank_lines, 1);
}

TEST(Arff, ClassFirstOrderAndQuotedNames) {
  const LabelledFile f = parse_arff_texts(
      "@RELATION r\n@ATTRIBUTE 'the class' {yes,no}\n@ATTRIBUTE \"the text\" STRING\n@DATA\nno,'hello'\n",
      "c.arff");
  ASSERT_EQ(f.rows.size(), 1u);
  EXPECT_EQ(f.rows[0].label, "no");
  EXPECT_EQ(f.rows[0].text, "hello");
}

TEST(Arff, MalformedFilesNameFileAndLine) {
  const std::string h = kHeader;  // @data is line 6
  expect_error<FormatError>([&] { parse_arff_texts(h + "'ok',1\n'never closed,0\n", "u.arff"); },
                            {"u.arff:8", "unclosed"});
  expect_error<FormatError>([&] { parse_arff_texts(h + "'text',2\n", "c.arff"); },
                            {"c.arff:7", "class value \"2\""});
  expect_error<FormatError>([&] { parse_arff_texts(h + "'a','b',1\n", "n.arff"); },
                            {"n.arff:7", "3 values", "2 attributes"});
  expect_error<FormatError>([&] { parse_arff_texts(h + "{0 'x', 1 1}\n", "s.arff"); },
                            {"s.arff:7", "sparse"});
  expect_error<FormatError>([&] { parse_arff_texts(h + "'  ',1\n", "e.arff"); }, {"e.arff:7", "empty text"});
  expect_error<FormatError>([] { parse_arff_texts("@relation r\n@attribute a numeric\n", "t.arff"); },
                            {"t.arff:2", "numeric", "not supported"});
  expect_error<FormatError>([] { parse_arff_texts("@relation r\n@attribute t string\n", "d.arff"); },
                            {"d.arff", "no @data"});
  expect_error<FormatError>([] { parse_arff_texts("hello\n", "x.arff"); }, {"x.arff:1", "expected @relation"});
  expect_error<FormatError>([] { parse_arff_texts("@relation r\n@data\n", "o.arff"); },
                            {"o.arff:2", "@data before"});
  expect_error<IOError>([] { read_arff_texts("/nonexistent/dir/r.arff"); }, {"/nonexistent/dir/r.arff"});
}

TEST(TopicCorpus, SplitsAreStratifiedAndReproducible) {
  focus::testing::TempDir dir;
  std::filesystem::create_directories(dir.file("topic"));
  std::string train = kHeader, test = kHeader;
  for (int i = 0; i < 100; ++i) train += "'doc " + std::to_string(i) + (i % 5 == 0 ? " maize',1\n" : " oil',0\n");
  for (int i = 0; i < 10; ++i) test += "'test " + std::to_string(i) + "',0\n";
  std::ofstream(dir.file("topic/ReutersCorn-train.arff")) << train;
  std::ofstream(dir.file("topic/ReutersCorn-test.arff")) << test;
  const TopicSplitCounts n = write_topic_split("corn", dir.str(), 0.1, 5, dir.file("a"));
  EXPECT_EQ(n.train, 90);
  EXPECT_EQ(n.valid, 10);
  EXPECT_EQ(n.valid_positive, 2);  // 10% of the 20 positives
  EXPECT_EQ(n.test, 10);
  write_topic_split("corn", dir.str(), 0.1, 5, dir.file("b"));
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(slurp(dir.file("a/valid.tsv")), slurp(dir.file("b/valid.tsv")));
  EXPECT_NE(slurp(dir.file("a/valid.tsv")).find("corn\tdoc"), std::string::npos);
  expect_error<IOError>([&] { write_topic_split("grain", dir.str(), 0.1, 5, dir.file("c")); },
                        {"ReutersGrain-train.arff", "fetch-data"});
  expect_error<ValueError>([&] { write_topic_split("wheat", dir.str(), 0.1, 5, dir.file("c")); }, {"wheat"});
}

TEST(TopicCorpus, RealFilesWhenFetched) {
  const std::string corn = topic_arff_path("corn", "train");
  if (!std::filesystem::exists(corn)) GTEST_SKIP() << "weka data not fetched (tools/fetch-data.sh)";
  const LabelledFile train = read_arff_texts(corn);
  const LabelledFile test = read_arff_texts(topic_arff_path("grain", "test"));
  EXPECT_EQ(train.rows.size(), 1554u);
  EXPECT_EQ(test.rows.size(), 604u);
  int64_t pos = 0;
  for (const auto& r : test.rows) pos += r.label == "1";
  EXPECT_EQ(pos, 57);
}
