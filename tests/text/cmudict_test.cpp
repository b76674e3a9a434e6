// CMUdict loader on a hand-made file (alternates, a U+FFFD line, apostrophes, dropped spellings,
// malformed lines, stress kept and stripped), the hash split, the default path, and, when the
// real dict.txt is present, its counts and split proportions.
#include "focus/text/cmudict.hpp"

#include <chrono>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {
namespace {

using testing::TempDir;
using testing::throws_with;

void write_text(const std::string& path, const std::string& s) {
  std::ofstream(path, std::ios::binary) << s;
}

const char* kSmallDict =
    ";;; a comment line\n"
    "A  AH0\n"
    "A(1)  EY1\n"
    "A'S  EY1 Z\n"
    "A.  EY1\n"                              // spelling with '.': dropped
    "ABC123  EY1 B IY1 S IY1\n"             // digits: dropped
    "ab  AE1 B\n"                            // lower case: dropped
    "D\xEF\xBF\xBDJ\xEF\xBF\xBD  D EY2 JH AA1\n"  // U+FFFD twice: invalid
    "READ  R EH1 D\n"
    "READ(1)  R IY1 D\r\n"                   // CRLF tolerated
    "\n"
    "RECORD  R EH1 K ER0 D\n"
    "RECORD(1)  R IH0 K AO1 R D\n"
    "RECORD(2)  R EH2 K ER0 D\n"             // same as RECORD without stress
    "READ(2)  R EH1 D\n"                     // exact duplicate
    "BADLINE EY1\n"                          // one space: invalid
    "EMPTY  \n"                              // no phones: invalid
    "BADPHONE  EY1 z\n"                      // lower-case phone: invalid
    "BADALT(x)  EY1\n"                       // non-numeric alternate: invalid
    "\xff\xfe  AH0\n"                        // not UTF-8: invalid
    "O'NEIL  OW0 N IY1 L";                   // no final newline

TEST(Cmudict, SmallFileWithoutStress) {
  TempDir dir;
  write_text(dir.file("dict.txt"), kSmallDict);
  CmudictStats st;
  const auto d = load_cmudict(dir.file("dict.txt"), false, &st);
  ASSERT_EQ(d.size(), 5u);
  EXPECT_EQ(d[0].word, "A");
  EXPECT_EQ(d[0].prons, (std::vector<std::string>{"AH", "EY"}));
  EXPECT_EQ(d[1].word, "A'S");
  EXPECT_EQ(d[1].prons, (std::vector<std::string>{"EY Z"}));
  EXPECT_EQ(d[2].word, "READ");
  EXPECT_EQ(d[2].prons, (std::vector<std::string>{"R EH D", "R IY D"}));
  EXPECT_EQ(d[3].word, "RECORD");
  EXPECT_EQ(d[3].prons, (std::vector<std::string>{"R EH K ER D", "R IH K AO R D"}));
  EXPECT_EQ(d[4].word, "O'NEIL");
  EXPECT_EQ(d[4].prons, (std::vector<std::string>{"OW N IY L"}));
  EXPECT_EQ(st.lines, 21);
  EXPECT_EQ(st.invalid, 7);  // comment, U+FFFD, BADLINE, EMPTY, BADPHONE, BADALT, \xff
  EXPECT_EQ(st.other_spelling, 3);
  EXPECT_EQ(st.duplicates, 2);  // RECORD(2) after stripping, READ(2)
}

TEST(Cmudict, SmallFileWithStress) {
  TempDir dir;
  write_text(dir.file("dict.txt"), kSmallDict);
  CmudictStats st;
  const auto d = load_cmudict(dir.file("dict.txt"), true, &st);
  ASSERT_EQ(d.size(), 5u);
  EXPECT_EQ(d[0].prons, (std::vector<std::string>{"AH0", "EY1"}));
  EXPECT_EQ(d[3].prons,
            (std::vector<std::string>{"R EH1 K ER0 D", "R IH0 K AO1 R D", "R EH2 K ER0 D"}));
  EXPECT_EQ(st.duplicates, 1);  // READ(2) only
}

TEST(Cmudict, MissingFileSaysHowToFetch) {
  EXPECT_TRUE(throws_with<IOError>([] { load_cmudict("/nonexistent/dict.txt"); },
                                   "'/nonexistent/dict.txt'; run tools/fetch-data.sh"));
}

TEST(Cmudict, Fnv1aAndSplit) {
  // FNV-1a 64 reference values (the published test vectors for "" and "a")
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  for (const char* w : {"HELLO", "WORLD", "O'NEIL", "A"}) {
    const uint64_t r = fnv1a64(w) % 100;
    const SplitPart want = r < 90 ? SplitPart::Train : r < 95 ? SplitPart::Dev : SplitPart::Test;
    EXPECT_EQ(split_of(w), want) << w;
  }
  EXPECT_STREQ(to_string(SplitPart::Dev), "dev");
}

TEST(Cmudict, DefaultPath) {
  const char* old = std::getenv("FOCUS_DATA_DIR");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  setenv("FOCUS_DATA_DIR", "/some/where", 1);
  EXPECT_EQ(default_cmudict_path(), "/some/where/cmudict/dict.txt");
  unsetenv("FOCUS_DATA_DIR");
  const std::string p = default_cmudict_path();
  EXPECT_NE(p.find("data-cache/cmudict/dict.txt"), std::string::npos) << p;
  if (saved) setenv("FOCUS_DATA_DIR", saved->c_str(), 1);
}

// The real file: the default path, else the scratch copy the set-up may leave in /tmp.
std::string real_dict() {
  for (const std::string& p : {default_cmudict_path(), std::string("/tmp/cmu/package/data/dict.txt")})
    if (std::filesystem::exists(p)) return p;
  return "";
}

TEST(CmudictReal, CountsAndSplit) {
  const std::string path = real_dict();
  if (path.empty()) GTEST_SKIP() << "CMUdict not fetched (tools/fetch-data.sh)";
  CmudictStats st;
  const auto stressed = load_cmudict(path, true, &st);
  int64_t prons = 0, multi = 0;
  for (const auto& e : stressed) {
    prons += static_cast<int64_t>(e.prons.size());
    multi += e.prons.size() > 1 ? 1 : 0;
  }
  EXPECT_EQ(st.lines, 133784);
  EXPECT_EQ(st.invalid, 1);  // the U+FFFD line
  EXPECT_EQ(stressed.size(), 123874u);
  EXPECT_EQ(prons, 132585);
  EXPECT_EQ(multi, 8090);

  const auto plain = load_cmudict(path, false, &st);
  ASSERT_EQ(plain.size(), stressed.size());
  int64_t plain_prons = 0;
  std::array<int64_t, 3> words{}, split_prons{};
  std::set<std::string> phones;
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].word, stressed[i].word);
    plain_prons += static_cast<int64_t>(plain[i].prons.size());
    const int s = static_cast<int>(split_of(plain[i].word));
    ++words[s];
    split_prons[s] += static_cast<int64_t>(plain[i].prons.size());
    for (const auto& p : plain[i].prons)
      for (size_t a = 0, b; a < p.size(); a = b + 1) {
        b = std::min(p.find(' ', a), p.size());
        phones.insert(p.substr(a, b - a));
      }
  }
  EXPECT_EQ(phones.size(), 39u);
  EXPECT_EQ(plain_prons + st.duplicates, prons);
  EXPECT_LT(plain_prons, prons);
  std::printf("[ info ] %zu words; %lld pronunciations with stress, %lld without; split words "
              "train/dev/test %lld/%lld/%lld (pronunciations %lld/%lld/%lld)\n",
              plain.size(), static_cast<long long>(prons), static_cast<long long>(plain_prons),
              static_cast<long long>(words[0]), static_cast<long long>(words[1]),
              static_cast<long long>(words[2]), static_cast<long long>(split_prons[0]),
              static_cast<long long>(split_prons[1]), static_cast<long long>(split_prons[2]));
  const double n = static_cast<double>(plain.size());
  EXPECT_NEAR(words[0] / n, 0.90, 0.01);
  EXPECT_NEAR(words[1] / n, 0.05, 0.01);
  EXPECT_NEAR(words[2] / n, 0.05, 0.01);
  // one entry per spelling, so no word (and none of its pronunciations) is on two sides
  std::set<std::string> spellings;
  for (const auto& e : plain) spellings.insert(e.word);
  EXPECT_EQ(spellings.size(), plain.size());
}

// BPE on the real spellings: learned on the train side, every word (dev/test included, so unseen
// ones) decodes back exactly; encoding all of them is timed.
TEST(CmudictReal, BpeRoundTrip) {
  const std::string path = real_dict();
  if (path.empty()) GTEST_SKIP() << "CMUdict not fetched (tools/fetch-data.sh)";
  const auto dict = load_cmudict(path);
  std::vector<std::string> train;
  for (const auto& e : dict)
    if (split_of(e.word) == SplitPart::Train) train.push_back(e.word);
  TokenizerOptions opt;
  opt.bpe_merges = 2000;
  const auto tok = train_tokenizer("bpe", train, opt);
  EXPECT_EQ(tok->to_json().at("merges").size(), 2000u);
  std::vector<std::vector<int64_t>> ids(dict.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < dict.size(); ++i) ids[i] = tok->encode(dict[i].word);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t tokens = 0;
  for (size_t i = 0; i < dict.size(); ++i) {
    tokens += static_cast<int64_t>(ids[i].size());
    ASSERT_EQ(tok->decode(ids[i]), dict[i].word);
  }
  std::printf("[ info ] BPE (2000 merges): %zu words -> %lld tokens, encoded in %.3f s\n",
              dict.size(), static_cast<long long>(tokens), secs);
}

}  // namespace
}  // namespace focus
