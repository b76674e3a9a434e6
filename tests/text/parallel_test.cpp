// TSV loading (blank lines, CRLF, UTF-8, bad lines named by file and line) and reference grouping.
#include "focus/text/parallel.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

using testing::TempDir;
using testing::throws_with;

void write_text(const std::string& path, const std::string& s) {
  std::ofstream(path, std::ios::binary) << s;
}

TEST(Tsv, LoadsPairs) {
  TempDir dir;
  write_text(dir.file("a.tsv"), "hello\tHH AH0 L OW1\r\n\n  \r\nmaison\tla maison rouge\nnaïve\tnaïf\n");
  const auto p = load_tsv(dir.file("a.tsv"));
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].source, "hello");
  EXPECT_EQ(p[0].target, "HH AH0 L OW1");
  EXPECT_EQ(p[1].target, "la maison rouge");
  EXPECT_EQ(p[2].source, "naïve");
  EXPECT_EQ(p[2].target, "naïf");
  write_text(dir.file("empty.tsv"), "");
  EXPECT_TRUE(load_tsv(dir.file("empty.tsv")).empty());
}

TEST(Tsv, BadLines) {
  TempDir dir;
  const auto bad = [&](const std::string& body, const std::string& needle) {
    write_text(dir.file("b.tsv"), body);
    return throws_with<FormatError>([&] { load_tsv(dir.file("b.tsv")); }, needle);
  };
  EXPECT_TRUE(bad("a\tb\n\nno tab here\n", "b.tsv:3: expected source<TAB>target (one tab), found 0"));
  EXPECT_TRUE(bad("a\tb\tc\n", "b.tsv:1: expected source<TAB>target (one tab), found 2"));
  EXPECT_TRUE(bad("a\tb\nx\t \n", "b.tsv:2: empty target"));
  EXPECT_TRUE(bad("\tb\n", "b.tsv:1: empty source"));
  EXPECT_TRUE(bad("a\tb\nx\xc3\tb\n", "b.tsv:2: not valid UTF-8"));
  EXPECT_TRUE(throws_with<IOError>([&] { load_tsv(dir.file("missing.tsv")); }, "missing.tsv"));
}

TEST(Tsv, GroupReferences) {
  const std::vector<TextPair> pairs = {
      {"READ", "R EH D"}, {"A", "AH"}, {"READ", "R IY D"}, {"B", "B IY"}, {"A", "EY"}};
  const auto g = group_references(pairs);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].source, "READ");
  EXPECT_EQ(g[0].refs, (std::vector<std::string>{"R EH D", "R IY D"}));
  EXPECT_EQ(g[1].source, "A");
  EXPECT_EQ(g[1].refs, (std::vector<std::string>{"AH", "EY"}));
  EXPECT_EQ(g[2].refs, (std::vector<std::string>{"B IY"}));
  EXPECT_TRUE(group_references({}).empty());
}

}  // namespace
}  // namespace focus
