// The SpamAssassin corpus reader and its splits (spam_corpus.hpp).
#include "focus/text/spam_corpus.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "focus/data/classification_data.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/cmudict.hpp"
#include "focus/text/mail.hpp"
#include "focus/text/strings.hpp"

namespace focus {

namespace fs = std::filesystem;

const std::vector<SpamGroup>& spam_groups() {
  static const std::vector<SpamGroup> groups = {
      {"easy-ham-1", false, 2500, 1}, {"hard-ham-1", false, 250, 1}, {"spam-1", true, 500, 1},
      {"easy-ham-2", false, 1400, 2}, {"spam-2", true, 1396, 2}};
  return groups;
}

std::string spam_dir(const std::string& cache_dir) {
  return cache_dir.empty() ? data_cache_file("spam") : cache_dir + "/spam";
}

namespace {

// The first `max_chars` bytes of `s`, cut back to a character boundary (s is valid UTF-8).
std::string cut_utf8(const std::string& s, size_t max_chars) {
  if (s.size() <= max_chars) return s;
  size_t end = max_chars;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

// Rows `rows` split into two stratified parts: round(share * size) of them (largest remainders
// per class, data/classification_data.hpp) go to `second`.
void stratified_part(const SpamCorpus& c, const std::vector<int64_t>& rows, double share,
                     uint64_t seed, std::vector<int64_t>& first, std::vector<int64_t>& second) {
  std::vector<int64_t> labels;
  for (int64_t i : rows) labels.push_back(c.messages[size_t(i)].spam ? 1 : 0);
  const auto n = int64_t(std::llround(share * double(rows.size())));
  const TrainValSplit s = split_train_val(labels, 2, n, seed);
  for (int64_t i : s.train) first.push_back(rows[size_t(i)]);
  for (int64_t i : s.val) second.push_back(rows[size_t(i)]);
}

void check_share(double share, const char* what) {
  FOCUS_CHECK(share > 0 && share < 1, ValueError, "{} {} must be in (0, 1)", what, share);
}

}  // namespace

SpamCorpus read_spam_corpus(const std::string& dir, int64_t max_chars) {
  FOCUS_CHECK(max_chars >= 1, ValueError, "max_chars {} must be >= 1", max_chars);
  SpamCorpus out;
  for (const SpamGroup& g : spam_groups()) {
    const fs::path folder = fs::path(dir) / g.name;
    std::error_code ec;
    FOCUS_CHECK(fs::is_directory(folder, ec), IOError,
                "spam corpus: {} is missing (run tools/fetch-data.sh)", folder.string());
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(folder))
      if (e.is_regular_file() && e.path().extension() == ".txt") names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    FOCUS_CHECK(int64_t(names.size()) == g.count, FormatError,
                "spam corpus: {} holds {} messages (*.txt), the package has {} (run tools/fetch-data.sh again)",
                folder.string(), names.size(), g.count);
    for (const std::string& name : names) {
      const std::string path = (folder / name).string();
      MailText m;
      try {
        m = read_mail_file(path);
      } catch (const FormatError& e) {
        out.unreadable.push_back(e.what());
        continue;
      }
      out.skipped_parts += m.skipped_parts;
      out.charset_fallbacks += m.charset_fallbacks;
      out.html_parts += m.html_parts;
      std::string text = normalize_whitespace(m.subject + "\n" + m.body);
      if (text.empty()) {
        text = "(empty message)";
        ++out.empty;
      }
      if (int64_t(text.size()) > max_chars) ++out.truncated;
      out.messages.push_back({g.name, name, g.spam, g.period, cut_utf8(text, size_t(max_chars))});
    }
  }
  return out;
}

SpamSplit spam_random_split(const SpamCorpus& corpus, double test_share, double valid_share,
                            uint64_t seed) {
  check_share(test_share, "test share");
  check_share(valid_share, "validation share");
  std::vector<int64_t> all(corpus.messages.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  SpamSplit s;
  std::vector<int64_t> rest;
  stratified_part(corpus, all, test_share, seed, rest, s.test);
  stratified_part(corpus, rest, valid_share, seed + 1, s.train, s.valid);
  return s;
}

SpamSplit spam_time_split(const SpamCorpus& corpus, double valid_share, uint64_t seed) {
  check_share(valid_share, "validation share");
  SpamSplit s;
  std::vector<int64_t> early;
  for (size_t i = 0; i < corpus.messages.size(); ++i)
    (corpus.messages[i].period == 1 ? early : s.test).push_back(int64_t(i));
  FOCUS_CHECK(!early.empty() && !s.test.empty(), ValueError,
              "time split: {} messages of the first period, {} of the second; both must be non-empty",
              early.size(), s.test.size());
  stratified_part(corpus, early, valid_share, seed + 1, s.train, s.valid);
  return s;
}

void write_spam_split(const SpamCorpus& corpus, const SpamSplit& split, const std::string& dir) {
  fs::create_directories(dir);
  const std::pair<const char*, const std::vector<int64_t>*> parts[] = {
      {"train", &split.train}, {"valid", &split.valid}, {"test", &split.test}};
  std::string sources;  // which message each line is, for tracing a row back to its file
  for (const auto& [name, rows] : parts) {
    std::string tsv;
    for (int64_t i : *rows) {
      const SpamMessage& m = corpus.messages.at(size_t(i));
      tsv += m.spam ? "spam\t" : "ham\t";
      tsv += m.text;  // whitespace collapsed: no tab or newline inside
      tsv += '\n';
      sources += fmt::format("{}\t{}/{}\n", name, m.group, m.file);
    }
    write_file_atomic(dir + "/" + name + ".tsv", tsv);
  }
  write_file_atomic(dir + "/sources.tsv", sources);
}

}  // namespace focus
