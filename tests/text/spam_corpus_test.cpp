// The spam corpus splits (text/spam_corpus.hpp): the random split is stratified 80/20 and the
// same seed gives the same rows; the time split tests exactly the second period; the TSV files
// read back with the labelled-text reader; a missing or incomplete corpus folder is an error
// naming it. With the corpus fetched (tools/fetch-data.sh), a few real messages are read.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/labelled.hpp"
#include "focus/text/mail.hpp"
#include "focus/text/spam_corpus.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;

namespace {

// 300 ham and 100 spam in period 1, 150 ham and 50 spam in period 2.
SpamCorpus toy_corpus() {
  SpamCorpus c;
  auto add = [&](const char* group, bool spam, int period, int n) {
    for (int i = 0; i < n; ++i)
      c.messages.push_back({group, std::to_string(i) + ".txt", spam, period,
                            std::string(spam ? "buy now " : "meeting notes ") + std::to_string(i)});
  };
  add("easy-ham-1", false, 1, 300);
  add("spam-1", true, 1, 100);
  add("easy-ham-2", false, 2, 150);
  add("spam-2", true, 2, 50);
  return c;
}

int64_t spam_in(const SpamCorpus& c, const std::vector<int64_t>& rows) {
  return std::count_if(rows.begin(), rows.end(), [&](int64_t i) { return c.messages[size_t(i)].spam; });
}

void expect_partition(const SpamSplit& s, size_t n) {
  std::set<int64_t> all(s.train.begin(), s.train.end());
  all.insert(s.valid.begin(), s.valid.end());
  all.insert(s.test.begin(), s.test.end());
  EXPECT_EQ(all.size(), n);
  EXPECT_EQ(s.train.size() + s.valid.size() + s.test.size(), n);  // disjoint
}

}  // namespace

TEST(SpamCorpus, RandomSplitIsStratifiedAndReproducible) {
  const SpamCorpus c = toy_corpus();
  const SpamSplit a = spam_random_split(c, 0.2, 0.1, 7);
  expect_partition(a, c.messages.size());
  EXPECT_EQ(a.test.size(), 120u);
  EXPECT_EQ(spam_in(c, a.test), 30);  // 20% of the 150 spam
  EXPECT_EQ(a.valid.size(), 48u);     // 10% of the 480 left
  EXPECT_EQ(spam_in(c, a.valid), 12);
  const SpamSplit b = spam_random_split(c, 0.2, 0.1, 7);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.valid, b.valid);
  EXPECT_EQ(a.test, b.test);
  const SpamSplit other = spam_random_split(c, 0.2, 0.1, 8);
  EXPECT_NE(a.test, other.test);
  expect_error<ValueError>([&] { spam_random_split(c, 1.0, 0.1, 0); }, {"test share", "1"});
}

TEST(SpamCorpus, TimeSplitTestsTheSecondPeriod) {
  const SpamCorpus c = toy_corpus();
  const SpamSplit s = spam_time_split(c, 0.1, 3);
  expect_partition(s, c.messages.size());
  ASSERT_EQ(s.test.size(), 200u);
  for (int64_t i : s.test) EXPECT_EQ(c.messages[size_t(i)].period, 2);
  for (int64_t i : s.train) EXPECT_EQ(c.messages[size_t(i)].period, 1);
  EXPECT_EQ(s.valid.size(), 40u);
  EXPECT_EQ(spam_in(c, s.valid), 10);
  EXPECT_EQ(spam_time_split(c, 0.1, 3).valid, s.valid);
}

TEST(SpamCorpus, WrittenSplitsReadBack) {
  focus::testing::TempDir dir;
  const SpamCorpus c = toy_corpus();
  const SpamSplit s = spam_random_split(c, 0.2, 0.1, 1);
  write_spam_split(c, s, dir.str() + "/random");
  const LabelledFile test = read_labelled_file(dir.file("random/test.tsv"));
  ASSERT_EQ(test.rows.size(), s.test.size());
  for (size_t k = 0; k < s.test.size(); ++k) {
    const SpamMessage& m = c.messages[size_t(s.test[k])];
    EXPECT_EQ(test.rows[k].label, m.spam ? "spam" : "ham");
    EXPECT_EQ(test.rows[k].text, m.text);
  }
  std::ifstream sources(dir.file("random/sources.tsv"));
  std::string first;
  std::getline(sources, first);
  const SpamMessage& m0 = c.messages[size_t(s.train[0])];
  EXPECT_EQ(first, "train\t" + m0.group + "/" + m0.file);
}

TEST(SpamCorpus, MissingOrIncompleteFolderIsNamed) {
  focus::testing::TempDir dir;
  expect_error<IOError>([&] { read_spam_corpus(dir.str(), 100); }, {"easy-ham-1", "fetch-data"});
  std::filesystem::create_directories(dir.file("easy-ham-1"));
  std::ofstream(dir.file("easy-ham-1/00001.abc.txt")) << "Subject: x\n\nhi\n";
  expect_error<FormatError>([&] { read_spam_corpus(dir.str(), 100); },
                            {"easy-ham-1", "holds 1 messages", "2500"});
  expect_error<ValueError>([&] { read_spam_corpus(dir.str(), 0); }, {"max_chars"});
}

TEST(SpamCorpus, RealMessagesWhenFetched) {
  const std::string root = spam_dir();
  if (!std::filesystem::is_directory(root + "/spam-2"))
    GTEST_SKIP() << "spam corpus not fetched (tools/fetch-data.sh)";
  // Every message of one group parses, and most carry text.
  int64_t files = 0, with_text = 0;
  for (const auto& e : std::filesystem::directory_iterator(root + "/hard-ham-1")) {
    const MailText m = read_mail_file(e.path().string());
    ++files;
    with_text += m.body.empty() ? 0 : 1;
  }
  EXPECT_EQ(files, 250);
  EXPECT_GE(with_text, 240);
}
