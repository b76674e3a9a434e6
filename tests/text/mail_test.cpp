// The mail reader (text/mail.hpp) on hand-made messages: quoted-printable and base64 bodies,
// charsets converted to UTF-8 (iso-8859-1, an RFC 2047 subject, an unknown charset guessed),
// multipart/alternative (the plain twin only) and mixed (every text part, images ignored), an
// attached message, the mbox "From " line, broken MIME parts counted as skips with their line,
// and files that are not mail: a FormatError naming the file and the line.
#include <gtest/gtest.h>

#include <fstream>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/mail.hpp"
#include "focus/text/strings.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;

TEST(Mail, QuotedPrintableIso88591ToUtf8) {
  const MailText m = parse_mail(
      "From: a@example.org\n"
      "Subject: =?iso-8859-1?q?Caf=E9_au_lait?=\n"
      "Content-Type: text/plain; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "Un caf=E9 tr=E8s soft=\n"
      "break, 1+1=3D2.\n",
      "qp.eml");
  EXPECT_EQ(m.subject, "Caf\xC3\xA9 au lait");
  EXPECT_EQ(m.body, "Un caf\xC3\xA9 tr\xC3\xA8s softbreak, 1+1=2.\n");
  EXPECT_EQ(m.text_parts, 1);
  EXPECT_EQ(m.skipped_parts, 0);
  EXPECT_EQ(m.charset_fallbacks, 0);
}

TEST(Mail, Base64Utf8Body) {
  // "Grüße aus Köln" in UTF-8, base64.
  const MailText m = parse_mail(
      "Subject: hello\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "R3LDvMOfZSBhdXMgS8O2bG4=\n",
      "b64.eml");
  EXPECT_EQ(m.body, "Gr\xC3\xBC\xC3\x9F" "e aus K\xC3\xB6ln");
}

TEST(Mail, AlternativeKeepsThePlainTwin) {
  const MailText m = parse_mail(
      "Subject: alt\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/alternative; boundary=\"BB\"\n"
      "\n"
      "--BB\n"
      "Content-Type: text/plain\n"
      "\n"
      "plain version\n"
      "--BB\n"
      "Content-Type: text/html\n"
      "\n"
      "<html><body><p>html version</p></body></html>\n"
      "--BB--\n",
      "alt.eml");
  EXPECT_EQ(m.body, "plain version");
  EXPECT_EQ(m.text_parts, 1);
  EXPECT_EQ(m.html_parts, 0);
}

TEST(Mail, HtmlOnlyAlternativeGoesThroughTheHtmlParser) {
  const MailText m = parse_mail(
      "Subject: offer\n"
      "Content-Type: multipart/alternative; boundary=XX\n"
      "\n"
      "--XX\n"
      "Content-Type: image/gif\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "R0lGODlhAQABAAAAACw=\n"
      "--XX\n"
      "Content-Type: text/html; charset=\"windows-1252\"\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "<html><head><style>p{color:red}</style><script>track()</script></head>\n"
      "<body><p>Save&nbsp;50&#37; &amp; more</p><p>=80 only</p><!-- hidden --></body></html>\n"
      "--XX--\n",
      "html.eml");
  EXPECT_EQ(m.body, "Save 50% & more \xE2\x82\xAC only");  // =80 is the euro sign in windows-1252
  EXPECT_EQ(m.html_parts, 1);
  EXPECT_EQ(m.text_parts, 0);
}

TEST(Mail, MixedKeepsEveryTextPartAndAttachedMessages) {
  const MailText m = parse_mail(
      "From nobody Thu Aug 22 13:17:22 2002\n"  // mbox separator line
      "Subject: fwd\n"
      "Content-Type: multipart/mixed; boundary=\"M\"\n"
      "\n"
      "--M\n"
      "Content-Type: text/plain\n"
      "\n"
      "first\n"
      "--M\n"
      "Content-Type: application/octet-stream\n"
      "\n"
      "binary stuff\n"
      "--M\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "Subject: inner\n"
      "Content-Type: text/html\n"
      "\n"
      "<b>second</b>\n"
      "--M--\n",
      "mixed.eml");
  EXPECT_EQ(m.subject, "fwd");
  EXPECT_EQ(m.body, "first\nsecond");
  EXPECT_EQ(m.text_parts, 1);
  EXPECT_EQ(m.html_parts, 1);
}

TEST(Mail, UnknownCharsetIsGuessedAndCounted) {
  const MailText m = parse_mail(
      "Subject: x\n"
      "Content-Type: text/plain; charset=x-no-such-charset\n"
      "Content-Transfer-Encoding: 8bit\n"
      "\n"
      "r\xE9sum\xE9\n",
      "bogus.eml");
  EXPECT_TRUE(is_valid_utf8(m.body));
  EXPECT_EQ(m.body, "r\xC3\xA9sum\xC3\xA9\n");  // iso-8859-1, GMime's last fallback
  EXPECT_EQ(m.charset_fallbacks, 1);
}

TEST(Mail, MultipartWithoutBoundaryIsASkippedPartWithItsLine) {
  const MailText m = parse_mail(
      "Subject: broken\n"
      "Content-Type: multipart/mixed\n"
      "\n"
      "--zz\n"
      "Content-Type: text/plain\n"
      "\n"
      "lost\n",
      "noboundary.eml");
  EXPECT_EQ(m.skipped_parts, 1);
  EXPECT_EQ(m.body, "");
  ASSERT_FALSE(m.issues.empty());
  EXPECT_NE(m.issues[0].what.find("multipart without a boundary"), std::string::npos) << m.issues[0].what;
  EXPECT_EQ(m.issues[0].line, 2);
}

TEST(Mail, BrokenNestedPartIsSkippedTheRestIsKept) {
  const MailText m = parse_mail(
      "Subject: half broken\n"
      "Content-Type: multipart/mixed; boundary=\"OUT\"\n"
      "\n"
      "--OUT\n"
      "Content-Type: text/plain\n"
      "\n"
      "kept text\n"
      "--OUT\n"
      "Content-Type: multipart/alternative\n"
      "\n"
      "no boundary here\n"
      "--OUT--\n",
      "nested.eml");
  EXPECT_EQ(m.body, "kept text");
  EXPECT_EQ(m.skipped_parts, 1);
}

TEST(Mail, NotMailIsAFormatErrorNamingFileAndLine) {
  expect_error<FormatError>([] { parse_mail(std::string("\x89PNG\r\n\x1a\n\0\0\0", 11), "img.png"); },
                            {"img.png:1", "not a mail message"});
  expect_error<FormatError>([] { parse_mail("just some words\nwithout headers\n", "notes.txt"); },
                            {"notes.txt:1", "not a mail message", "invalid header name"});
  expect_error<FormatError>([] { parse_mail("", "empty.eml"); }, {"empty.eml", "not a mail message"});
}

TEST(Mail, ReadsFilesAndNamesAMissingOne) {
  focus::testing::TempDir dir;
  {
    std::ofstream f(dir.file("m.eml"), std::ios::binary);
    f << "Subject: on disk\n\nbody text\n";
  }
  const MailText m = read_mail_file(dir.file("m.eml"));
  EXPECT_EQ(m.subject, "on disk");
  EXPECT_EQ(m.body, "body text\n");
  expect_error<IOError>([&] { read_mail_file(dir.file("absent.eml")); }, {"absent.eml"});
}
