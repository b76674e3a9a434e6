// parse_mail / read_mail_file (mail.hpp): GMime's parser, a walk over the MIME tree, and the
// parser's warnings turned into issues with line numbers.
#include "focus/text/mail.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>

#include "focus/tensor/error.hpp"
#include "focus/text/html_text.hpp"
#include "focus/text/strings.hpp"

namespace focus {

namespace {

struct GObjectUnref {
  void operator()(void* p) const { if (p) g_object_unref(p); }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

struct GFree {
  void operator()(char* p) const { g_free(p); }
};
using GString_ = std::unique_ptr<char, GFree>;

void init_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

const char* warning_name(GMimeParserWarning w) {
  switch (w) {
    case GMIME_WARN_DUPLICATED_HEADER: return "duplicated header";
    case GMIME_WARN_DUPLICATED_PARAMETER: return "duplicated header parameter";
    case GMIME_WARN_UNENCODED_8BIT_HEADER: return "unencoded 8-bit header";
    case GMIME_WARN_INVALID_CONTENT_TYPE: return "invalid content type";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE: return "invalid RFC 2047 header value";
    case GMIME_WARN_MALFORMED_MULTIPART: return "multipart with no part inside";
    case GMIME_WARN_TRUNCATED_MESSAGE: return "truncated message";
    case GMIME_WARN_MALFORMED_MESSAGE: return "malformed message";
    case GMIME_CRIT_INVALID_HEADER_NAME: return "invalid header name";
    case GMIME_CRIT_CONFLICTING_HEADER: return "conflicting header";
    case GMIME_CRIT_CONFLICTING_PARAMETER: return "conflicting header parameter";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "multipart without a boundary";
    case GMIME_WARN_INVALID_PARAMETER: return "invalid header parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST: return "invalid address list";
    case GMIME_CRIT_NESTING_OVERFLOW: return "MIME nesting too deep";
    case GMIME_WARN_PART_WITHOUT_CONTENT: return "part without content";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "part without headers or content";
  }
  return "parser warning";
}

struct ParseState {
  std::string_view bytes;
  MailText out;
  std::vector<std::string> texts;
};

int64_t line_of(std::string_view bytes, int64_t offset) {
  if (offset < 0) return 0;
  const size_t end = std::min(bytes.size(), size_t(offset));
  return 1 + int64_t(std::count(bytes.begin(), bytes.begin() + std::ptrdiff_t(end), '\n'));
}

void on_warning(gint64 offset, GMimeParserWarning code, const gchar* item, gpointer user) {
  auto* st = static_cast<ParseState*>(user);
  std::string what = warning_name(code);
  if (item && *item) {
    std::string shown(item, std::min<size_t>(std::strlen(item), 60));
    if (!is_valid_utf8(shown)) shown = "...";
    what += " (" + shown + ")";
  }
  st->out.issues.push_back({line_of(st->bytes, offset), std::move(what)});
}

bool is_type(GMimeObject* o, const char* type, const char* subtype) {
  GMimeContentType* ct = g_mime_object_get_content_type(o);
  return ct && g_mime_content_type_is_type(ct, type, subtype);
}

// The UTF-8 text of a text part: GMime decodes the transfer encoding and converts from the
// declared charset; bytes that are still not UTF-8 go through its 8-bit guess.
std::string part_text(GMimeTextPart* part, MailText& out) {
  GString_ text(g_mime_text_part_get_text(part));
  if (!text) return {};
  std::string_view s(text.get());
  if (is_valid_utf8(s)) return std::string(s);
  ++out.charset_fallbacks;
  GString_ guessed(g_mime_utils_decode_8bit(nullptr, s.data(), s.size()));
  std::string g = guessed ? std::string(guessed.get()) : std::string();
  if (is_valid_utf8(g)) return g;
  std::string clean;  // defensive: keep only well-formed sequences
  for (size_t i = 0; i < g.size();) {
    const size_t n = utf8_sequence_length(g, i);
    if (n == 0) { clean += ' '; ++i; } else { clean.append(g, i, n); i += n; }
  }
  return clean;
}

void walk(GMimeObject* o, ParseState& st, int depth) {
  if (!o || depth > 64) return;
  if (GMIME_IS_MESSAGE_PART(o)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
    if (inner) walk(g_mime_message_get_mime_part(inner), st, depth + 1);
    return;
  }
  if (GMIME_IS_MULTIPART(o)) {
    auto* mp = GMIME_MULTIPART(o);
    const int n = g_mime_multipart_get_count(mp);
    if (n == 0) {  // no boundary, or none of its boundaries found: its text is lost
      ++st.out.skipped_parts;
      return;
    }
    if (is_type(o, "multipart", "alternative")) {
      GMimeObject* pick = nullptr;
      for (int i = 0; i < n && !pick; ++i)
        if (is_type(g_mime_multipart_get_part(mp, i), "text", "plain")) pick = g_mime_multipart_get_part(mp, i);
      walk(pick ? pick : g_mime_multipart_get_part(mp, n - 1), st, depth + 1);
      return;
    }
    for (int i = 0; i < n; ++i) walk(g_mime_multipart_get_part(mp, i), st, depth + 1);
    return;
  }
  if (!GMIME_IS_TEXT_PART(o)) return;
  const bool plain = is_type(o, "text", "plain"), html = is_type(o, "text", "html");
  if (!plain && !html) return;
  std::string text = part_text(GMIME_TEXT_PART(o), st.out);
  if (html) {
    text = html_to_text(text);
    ++st.out.html_parts;
  } else {
    ++st.out.text_parts;
  }
  if (!text.empty()) st.texts.push_back(std::move(text));
}

}  // namespace

MailText parse_mail(std::string_view bytes, const std::string& name) {
  init_gmime();
  ParseState st;
  st.bytes = bytes;
  // The memory stream copies the bytes; the parser and options are freed on every path.
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  if (bytes.substr(0, 5) == "From ") g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MBOX);
  std::unique_ptr<GMimeParserOptions, void (*)(GMimeParserOptions*)> options(
      g_mime_parser_options_new(), g_mime_parser_options_free);
  g_mime_parser_options_set_warning_callback(options.get(), on_warning, &st);
  GPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), options.get()));
  if (!msg) {
    const MailIssue first = st.out.issues.empty() ? MailIssue{1, "no header found"} : st.out.issues.front();
    throw FormatError(fmt::format("{}:{}: not a mail message ({})", name, std::max<int64_t>(first.line, 1), first.what));
  }
  if (const char* subject = g_mime_message_get_subject(msg.get())) {
    st.out.subject = subject;
    if (!is_valid_utf8(st.out.subject)) {
      GString_ g(g_mime_utils_decode_8bit(nullptr, subject, std::strlen(subject)));
      st.out.subject = g && is_valid_utf8(g.get()) ? g.get() : "";
    }
  }
  for (const MailIssue& issue : st.out.issues)  // the parser's own skips
    if (issue.what.rfind("part without headers or content", 0) == 0 ||
        issue.what.rfind("MIME nesting too deep", 0) == 0)
      ++st.out.skipped_parts;
  walk(g_mime_message_get_mime_part(msg.get()), st, 0);
  for (size_t i = 0; i < st.texts.size(); ++i) {
    if (i) st.out.body += '\n';
    st.out.body += st.texts[i];
  }
  return std::move(st.out);
}

MailText read_mail_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f, IOError, "cannot read mail file {}", path);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  FOCUS_CHECK(!f.bad(), IOError, "error reading mail file {}", path);
  return parse_mail(bytes, path);
}

}  // namespace focus
