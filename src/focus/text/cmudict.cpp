// CMUdict loading and the hash split (see cmudict.hpp).
#include "focus/text/cmudict.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "focus/tensor/error.hpp"
#include "focus/text/strings.hpp"

namespace focus {
namespace {

bool is_spelling(const std::string& w) {
  if (w.empty()) return false;
  for (const char c : w)
    if (!((c >= 'A' && c <= 'Z') || c == '\'')) return false;
  return true;
}

// A phone is ^[A-Z]+[0-2]?$; appends it to `out` (without its digit unless keep_stress).
bool append_phone(const std::string& p, bool keep_stress, std::string& out) {
  size_t n = p.size();
  const bool digit = n > 0 && p[n - 1] >= '0' && p[n - 1] <= '2';
  const size_t letters = digit ? n - 1 : n;
  if (letters == 0) return false;
  for (size_t i = 0; i < letters; ++i)
    if (p[i] < 'A' || p[i] > 'Z') return false;
  if (!out.empty()) out += ' ';
  out.append(p, 0, keep_stress ? n : letters);
  return true;
}

// Splits `line` into (spelling without "(N)", pronunciation); false when malformed.
bool parse_line(const std::string& line, bool keep_stress, std::string& word, std::string& pron) {
  if (!is_valid_utf8(line) || line.find("\xEF\xBF\xBD") != std::string::npos) return false;
  const size_t sep = line.find("  ");
  if (sep == std::string::npos || sep == 0) return false;
  word = line.substr(0, sep);
  if (word.back() == ')') {  // an alternate: WORD(N)
    const size_t open = word.rfind('(');
    if (open == std::string::npos || open == 0 || open + 2 >= word.size()) return false;
    for (size_t i = open + 1; i + 1 < word.size(); ++i)
      if (word[i] < '0' || word[i] > '9') return false;
    word.resize(open);
  }
  pron.clear();
  const auto phones = split_whitespace(std::string_view(line).substr(sep + 2));
  if (phones.empty()) return false;
  for (const auto& p : phones)
    if (!append_phone(p, keep_stress, pron)) return false;
  return true;
}

}  // namespace

std::vector<DictEntry> load_cmudict(const std::string& path, bool keep_stress,
                                    CmudictStats* stats) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f.good(), IOError,
              "cmudict: cannot open '{}'; run tools/fetch-data.sh (or make test / make demo) to "
              "download it, or set FOCUS_DATA_DIR",
              path);
  CmudictStats st;
  std::vector<DictEntry> entries;
  std::unordered_map<std::string, size_t> index;
  std::string line, word, pron;
  while (std::getline(f, line)) {
    ++st.lines;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line.rfind(";;;", 0) == 0 || !parse_line(line, keep_stress, word, pron)) {
      ++st.invalid;
      continue;
    }
    if (!is_spelling(word)) {
      ++st.other_spelling;
      continue;
    }
    const auto [it, fresh] = index.emplace(word, entries.size());
    if (fresh) entries.push_back({word, {}});
    auto& prons = entries[it->second].prons;
    if (std::find(prons.begin(), prons.end(), pron) != prons.end())
      ++st.duplicates;
    else
      prons.push_back(pron);
  }
  FOCUS_CHECK(!f.bad(), IOError, "cmudict: read error in '{}' after line {}", path, st.lines);
  if (stats) *stats = st;
  return entries;
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

SplitPart split_of(const std::string& word) {
  const uint64_t r = fnv1a64(word) % 100;
  return r < 90 ? SplitPart::Train : r < 95 ? SplitPart::Dev : SplitPart::Test;
}

const char* to_string(SplitPart p) {
  switch (p) {
    case SplitPart::Train: return "train";
    case SplitPart::Dev: return "dev";
    case SplitPart::Test: return "test";
  }
  return "?";
}

std::string default_cmudict_path() { return data_cache_file("cmudict/dict.txt"); }

std::string data_cache_file(const std::string& relative) {
  namespace fs = std::filesystem;
  const fs::path rel(relative);
  if (const char* dir = std::getenv("FOCUS_DATA_DIR"); dir && *dir) return (dir / rel).string();
  const fs::path local = fs::path("data-cache") / rel;
  std::error_code ec;
  if (fs::exists(local, ec)) return local.string();
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = exe.parent_path().parent_path() / "data-cache" / rel;
    if (fs::exists(beside, ec)) return beside.string();
  }
  return local.string();
}

}  // namespace focus
