// Labelled-text readers and normalisation (see labelled.hpp).
#include "focus/text/labelled.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"
#include "focus/text/cmudict.hpp"
#include "focus/text/strings.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {
namespace {

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return is_ascii_space(c); });
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f.good(), IOError, "cannot open '{}'", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  FOCUS_CHECK(!f.bad(), IOError, "read error in '{}'", path);
  return ss.str();
}

// Calls fn(line, number) for every line (trailing CR dropped), counting blank ones.
template <class Fn>
void for_lines(std::string_view content, LabelledFile& out, Fn&& fn) {
  int64_t no = 0;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    ++no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (blank(line)) {
      ++out.blank_lines;
      continue;
    }
    FOCUS_CHECK(is_valid_utf8(line), FormatError, "{}:{}: not valid UTF-8", out.path, no);
    fn(line, no);
  }
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

LabelledFile parse_labelled_tsv(std::string_view content, const std::string& name) {
  LabelledFile out;
  out.path = name;
  for_lines(content, out, [&](std::string_view line, int64_t no) {
    const size_t tab = line.find('\t');
    FOCUS_CHECK(tab != std::string_view::npos, FormatError,
                "{}:{}: expected label<TAB>text, found no tab", name, no);
    LabelledText r{std::string(line.substr(0, tab)), std::string(line.substr(tab + 1)), no};
    FOCUS_CHECK(!blank(r.label), FormatError, "{}:{}: empty label", name, no);
    FOCUS_CHECK(!blank(r.text), FormatError, "{}:{}: empty text", name, no);
    r.label = normalize_whitespace(r.label);
    out.rows.push_back(std::move(r));
  });
  return out;
}

namespace {
std::string label_of(const nlohmann::json& v, const std::string& name, int64_t no, const char* what) {
  if (v.is_string()) {
    FOCUS_CHECK(!blank(v.get<std::string>()), FormatError, "{}:{}: empty {}", name, no, what);
    return normalize_whitespace(v.get<std::string>());
  }
  FOCUS_CHECK(v.is_number_integer(), FormatError, "{}:{}: \"{}\" must be a string or an integer, got {}",
              name, no, what, v.dump());
  return std::to_string(v.get<int64_t>());
}
}  // namespace

LabelledFile parse_labelled_jsonl(std::string_view content, const std::string& name) {
  LabelledFile out;
  out.path = name;
  for_lines(content, out, [&](std::string_view line, int64_t no) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(fmt::format("{}:{}: not a JSON object ({})", name, no, e.what()));
    }
    FOCUS_CHECK(j.is_object(), FormatError, "{}:{}: not a JSON object", name, no);
    FOCUS_CHECK(j.contains("label"), FormatError, "{}:{}: no \"label\"", name, no);
    FOCUS_CHECK(j.contains("text") && j["text"].is_string(), FormatError,
                "{}:{}: no string \"text\"", name, no);
    LabelledText r{label_of(j["label"], name, no, "label"), j["text"].get<std::string>(), no};
    FOCUS_CHECK(!blank(r.text), FormatError, "{}:{}: empty text", name, no);
    out.rows.push_back(std::move(r));
  });
  return out;
}

LabelledFile read_labelled_file(const std::string& path) {
  const std::string content = read_all(path);
  if (ends_with(path, ".jsonl") || ends_with(path, ".json")) return parse_labelled_jsonl(content, path);
  return parse_labelled_tsv(content, path);
}

const std::vector<std::string>& sentiment_sites() {
  static const std::vector<std::string> sites = {"amazon", "imdb", "yelp"};
  return sites;
}

std::string sentiment_path(const std::string& site, const std::string& cache_dir) {
  const std::string rel = "sentiment/" + site + ".json";
  return cache_dir.empty() ? data_cache_file(rel) : cache_dir + "/" + rel;
}

LabelledFile read_sentiment_file(const std::string& path) {
  FOCUS_CHECK(std::filesystem::exists(path), IOError,
              "'{}' not found (run tools/fetch-data.sh: it fetches npm sentiment@5.0.2)", path);
  const std::string content = read_all(path);
  nlohmann::json a;
  try {
    a = nlohmann::json::parse(content);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("{}: not JSON ({})", path, e.what()));
  }
  FOCUS_CHECK(a.is_array(), FormatError, "{}: expected a JSON array of {{\"text\", \"class\"}}", path);
  LabelledFile out;
  out.path = path;
  for (size_t i = 0; i < a.size(); ++i) {
    const nlohmann::json& r = a[i];
    const bool trailer = i + 1 == a.size() && r.is_object() &&
                         (!r.contains("class") || r["class"].is_null()) &&
                         (!r.contains("text") || (r["text"].is_string() && blank(r["text"].get<std::string>())));
    if (trailer) continue;
    FOCUS_CHECK(r.is_object() && r.contains("text") && r["text"].is_string(), FormatError,
                "{}: record {}: no string \"text\"", path, i + 1);
    FOCUS_CHECK(r.contains("class") && r["class"].is_number_integer() &&
                    (r["class"].get<int64_t>() == 0 || r["class"].get<int64_t>() == 1),
                FormatError, "{}: record {}: \"class\" must be 0 or 1", path, i + 1);
    const std::string text = r["text"].get<std::string>();
    FOCUS_CHECK(is_valid_utf8(text), FormatError, "{}: record {}: not valid UTF-8", path, i + 1);
    FOCUS_CHECK(!blank(text), FormatError, "{}: record {}: empty text", path, i + 1);
    out.rows.push_back({r["class"].get<int64_t>() == 1 ? "positive" : "negative", text, int64_t(i + 1)});
  }
  return out;
}

std::string normalize_for_classification(std::string_view text) {
  std::string s;
  s.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80 && std::isupper(c)) {
      s.push_back(char(std::tolower(c)));
    } else if (c < 0x80 && std::ispunct(c)) {
      const bool inner_apostrophe = c == '\'' && i > 0 && i + 1 < text.size() &&
                                    std::isalnum(static_cast<unsigned char>(text[i - 1])) &&
                                    std::isalnum(static_cast<unsigned char>(text[i + 1]));
      if (inner_apostrophe) {
        s.push_back('\'');
      } else {
        s.push_back(' ');
        s.push_back(char(c));
        s.push_back(' ');
      }
    } else {
      s.push_back(char(c));
    }
  }
  return normalize_whitespace(s);
}

std::vector<int64_t> encode_for_classification(const Tokenizer& tok, std::string_view text,
                                               int64_t max_len) {
  FOCUS_CHECK(max_len >= 1, ValueError, "encode_for_classification: max_len {} must be positive",
              max_len);
  std::vector<int64_t> ids = tok.encode(normalize_for_classification(text));
  if (int64_t(ids.size()) > max_len) ids.resize(size_t(max_len));
  if (ids.empty()) ids.push_back(Vocab::kUnk);
  return ids;
}

Tensor pad_token_rows(const std::vector<const std::vector<int64_t>*>& rows) {
  size_t L = 1;
  for (const auto* r : rows) L = std::max(L, r->size());
  Tensor x = Tensor::zeros({int64_t(rows.size()), int64_t(L)}, DType::I64);  // (B, L)
  int64_t* p = x.data<int64_t>();
  for (size_t b = 0; b < rows.size(); ++b) std::copy(rows[b]->begin(), rows[b]->end(), p + b * L);
  return x;
}

}  // namespace focus
