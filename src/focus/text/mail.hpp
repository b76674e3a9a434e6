// Mail messages as text, for the spam task: a raw RFC 822 / MIME message (optionally behind an
// mbox "From " line) -> its Subject and the UTF-8 text of its body parts. GMime does the parsing
// (headers, RFC 2047 encoded words, multipart nesting, quoted-printable and base64, charset
// conversion to UTF-8) and text/html parts go through html_to_text (libxml2); mail.cpp is the
// only file that calls GMime.
//
// Which parts: every text/plain and text/html part, in order, including those of attached
// messages (message/rfc822); of a multipart/alternative, only its text/plain alternative when it
// has one (the html twin would repeat the text), else its last readable alternative. Other types
// (images, application/*) are ignored. No other header than Subject is returned: the caller
// decides which header is signal (docs/RESULTS.md, spam: Received/Date/Message-ID lines name the
// collection's hosts and dates and would leak the label and the time split).
//
// Malformed input: a file that does not start with a mail header (GMime finds no message) is a
// FormatError "<name>:<line>: not a mail message (...)". A broken MIME part (a multipart with no
// boundary or no part inside, a part with neither headers nor content) is skipped and counted
// (skipped_parts), with the parser's warning and its line in `issues`. A part whose declared
// charset is unknown, missing or wrong (bytes that do not decode) is decoded by GMime's 8-bit
// guess (its fallback charsets, iso-8859-1 last) and counted (charset_fallbacks).
//
//   const MailText m = read_mail_file("data-cache/spam/spam-1/00001.txt");
//   m.subject, m.body, m.skipped_parts
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace focus {

struct MailIssue {
  int64_t line = 0;  // 1-based line of the message where the parser noticed it; 0 when unknown
  std::string what;  // e.g. "multipart without a boundary (multipart/mixed)"
};

struct MailText {
  std::string subject;  // decoded to UTF-8; "" when there is none
  std::string body;     // the parts' texts, in order, joined by newlines; valid UTF-8
  int64_t text_parts = 0, html_parts = 0;  // parts read
  int64_t skipped_parts = 0;               // broken parts left out (see issues)
  int64_t charset_fallbacks = 0;           // parts decoded by the 8-bit guess
  std::vector<MailIssue> issues;           // every parser warning, in order
};

// `bytes` is the whole message; `name` stands for the file in messages. Bytes starting with
// "From " are read as an mbox holding one message (its first).
MailText parse_mail(std::string_view bytes, const std::string& name);
// The same from a file. IOError when it cannot be read.
MailText read_mail_file(const std::string& path);

}  // namespace focus
