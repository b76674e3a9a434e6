// TSV loading and reference grouping (see parallel.hpp).
#include "focus/text/parallel.hpp"

#include <algorithm>
#include <fstream>
#include <unordered_map>

#include "focus/tensor/error.hpp"
#include "focus/text/strings.hpp"

namespace focus {
namespace {

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return is_ascii_space(c); });
}

}  // namespace

std::vector<TextPair> load_tsv(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f.good(), IOError, "load_tsv: cannot open '{}'", path);
  std::vector<TextPair> out;
  std::string line;
  for (int64_t no = 1; std::getline(f, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) continue;
    FOCUS_CHECK(is_valid_utf8(line), FormatError, "load_tsv: {}:{}: not valid UTF-8", path, no);
    const auto tabs = std::count(line.begin(), line.end(), '\t');
    FOCUS_CHECK(tabs == 1, FormatError,
                "load_tsv: {}:{}: expected source<TAB>target (one tab), found {} tabs", path, no,
                tabs);
    const size_t tab = line.find('\t');
    TextPair p{line.substr(0, tab), line.substr(tab + 1)};
    FOCUS_CHECK(!blank(p.source) && !blank(p.target), FormatError, "load_tsv: {}:{}: empty {}",
                path, no, blank(p.source) ? "source" : "target");
    out.push_back(std::move(p));
  }
  FOCUS_CHECK(!f.bad(), IOError, "load_tsv: read error in '{}'", path);
  return out;
}

std::vector<RefGroup> group_references(const std::vector<TextPair>& pairs) {
  std::vector<RefGroup> groups;
  std::unordered_map<std::string, size_t> index;
  for (const auto& p : pairs) {
    const auto [it, fresh] = index.emplace(p.source, groups.size());
    if (fresh) groups.push_back({p.source, {}});
    groups[it->second].refs.push_back(p.target);
  }
  return groups;
}

}  // namespace focus
