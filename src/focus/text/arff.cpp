// read_arff_texts / parse_arff_texts (arff.hpp): a line-by-line reader of the string + nominal
// ARFF shape.
#include "focus/text/arff.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <vector>

#include "focus/tensor/error.hpp"
#include "focus/text/strings.hpp"

namespace focus {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

// One value starting at s[i] (after spaces): quoted (with escapes) or bare up to the next comma.
// Advances i past the value and its comma. `where` names the file and line.
std::string next_value(std::string_view s, size_t& i, const std::string& where) {
  while (i < s.size() && is_ascii_space(s[i])) ++i;
  std::string v;
  if (i < s.size() && (s[i] == '\'' || s[i] == '"')) {
    const char q = s[i++];
    bool closed = false;
    while (i < s.size()) {
      const char c = s[i++];
      if (c == q) { closed = true; break; }
      if (c != '\\' || i >= s.size()) { v += c; continue; }
      const char e = s[i++];
      v += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
    }
    FOCUS_CHECK(closed, FormatError, "{}: unclosed {} quote", where, q);
    while (i < s.size() && is_ascii_space(s[i])) ++i;
  } else {
    const size_t end = std::min(s.find(',', i), s.size());
    v = std::string(trim(s.substr(i, end - i)));
    i = end;
  }
  if (i < s.size()) {
    FOCUS_CHECK(s[i] == ',', FormatError, "{}: expected ',' after a value, found '{}'", where, s[i]);
    ++i;
  }
  return v;
}

}  // namespace

LabelledFile parse_arff_texts(std::string_view content, const std::string& name) {
  LabelledFile out;
  out.path = name;
  int text_attr = -1, class_attr = -1, attrs = 0;
  std::vector<std::string> classes;
  bool in_data = false;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < content.size()) {
    const size_t end = std::min(content.find('\n', pos), content.size());
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const std::string where = fmt::format("{}:{}", name, line_no);
    line = trim(line);
    if (line.empty()) { if (in_data) ++out.blank_lines; continue; }
    if (line.front() == '%') continue;
    FOCUS_CHECK(is_valid_utf8(line), FormatError, "{}: not valid UTF-8", where);
    if (!in_data) {
      const std::string head = lower(line.substr(0, std::min<size_t>(line.size(), 10)));
      if (head.rfind("@relation", 0) == 0) continue;
      if (head.rfind("@data", 0) == 0) {
        FOCUS_CHECK(text_attr >= 0 && class_attr >= 0, FormatError,
                    "{}: @data before a string attribute and a nominal class attribute", where);
        in_data = true;
        continue;
      }
      FOCUS_CHECK(head.rfind("@attribute", 0) == 0, FormatError,
                  "{}: expected @relation, @attribute or @data, found \"{}\"", where,
                  line.substr(0, std::min<size_t>(line.size(), 40)));
      // The name (quoted when it holds spaces), then the type.
      std::string_view rest = trim(line.substr(10));
      if (!rest.empty() && (rest.front() == '\'' || rest.front() == '"')) {
        const size_t close = rest.find(rest.front(), 1);
        FOCUS_CHECK(close != std::string_view::npos, FormatError, "{}: unclosed attribute name", where);
        rest = trim(rest.substr(close + 1));
      } else {
        const size_t sp = rest.find_first_of(" \t");
        FOCUS_CHECK(sp != std::string_view::npos, FormatError, "{}: @attribute without a type", where);
        rest = trim(rest.substr(sp));
      }
      if (lower(rest) == "string") {
        FOCUS_CHECK(text_attr < 0, FormatError, "{}: a second string attribute", where);
        text_attr = attrs;
      } else if (!rest.empty() && rest.front() == '{' && rest.back() == '}') {
        FOCUS_CHECK(class_attr < 0, FormatError, "{}: a second nominal attribute", where);
        class_attr = attrs;
        std::string_view body = rest.substr(1, rest.size() - 2);
        size_t j = 0;
        while (j < body.size()) classes.push_back(next_value(body, j, where));
        FOCUS_CHECK(!classes.empty(), FormatError, "{}: a nominal attribute with no value", where);
      } else {
        throw FormatError(fmt::format("{}: attribute type \"{}\" is not supported (string and nominal only)", where, rest));
      }
      ++attrs;
      continue;
    }
    FOCUS_CHECK(line.front() != '{', FormatError, "{}: sparse rows are not supported", where);
    std::vector<std::string> values;
    size_t i = 0;
    while (i < line.size()) values.push_back(next_value(line, i, where));
    FOCUS_CHECK(int(values.size()) == attrs, FormatError, "{}: {} values, the header declares {} attributes",
                where, values.size(), attrs);
    const std::string& label = values[size_t(class_attr)];
    FOCUS_CHECK(std::find(classes.begin(), classes.end(), label) != classes.end(), FormatError,
                "{}: class value \"{}\" is not one the header lists", where, label);
    const std::string& text = values[size_t(text_attr)];
    FOCUS_CHECK(!trim(text).empty(), FormatError, "{}: empty text", where);
    out.rows.push_back({label, text, line_no});
  }
  FOCUS_CHECK(in_data, FormatError, "{}: no @data section", name);
  return out;
}

LabelledFile read_arff_texts(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f, IOError, "cannot read ARFF file {}", path);
  const std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_arff_texts(content, path);
}

}  // namespace focus
