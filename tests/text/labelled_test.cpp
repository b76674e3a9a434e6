// Labelled-text readers: TSV and JSON lines parse labels and texts (blank lines skipped and
// counted), malformed lines are FormatErrors naming the file and the line, the sentiment array
// drops only its empty trailer, normalisation, and encoding for a classifier (truncation, never
// an empty row, padding).
#include <gtest/gtest.h>

#include <fstream>

#include "data/temp_dir.hpp"
#include "focus/text/labelled.hpp"
#include "focus/text/tokenizer.hpp"
#include "focus/text/vocab.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::testing::expect_error;

namespace {
void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}
}  // namespace

TEST(LabelledText, TsvParsesLabelsAndTexts) {
  const LabelledFile f = parse_labelled_tsv("pos\tGreat phone\r\n\n  \nneg\tNot\tgood\n", "a.tsv");
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(f.rows[0].label, "pos");
  EXPECT_EQ(f.rows[0].text, "Great phone");
  EXPECT_EQ(f.rows[0].line, 1);
  EXPECT_EQ(f.rows[1].text, "Not\tgood");  // the first tab separates; later ones are text
  EXPECT_EQ(f.rows[1].line, 4);
  EXPECT_EQ(f.blank_lines, 2);
}

TEST(LabelledText, BadTsvLinesNameFileAndLine) {
  expect_error<FormatError>([] { parse_labelled_tsv("pos\tok\nno tab here\n", "t.tsv"); },
                            {"t.tsv:2", "no tab"});
  expect_error<FormatError>([] { parse_labelled_tsv("pos\tok\n\tmissing label\n", "t.tsv"); },
                            {"t.tsv:2", "empty label"});
  expect_error<FormatError>([] { parse_labelled_tsv("pos\t   \n", "t.tsv"); }, {"t.tsv:1", "empty text"});
  expect_error<FormatError>([] { parse_labelled_tsv("a\tok\nb\tbad \xff byte\n", "t.tsv"); },
                            {"t.tsv:2", "UTF-8"});
}

TEST(LabelledText, JsonLinesTakeStringOrIntegerLabels) {
  const LabelledFile f =
      parse_labelled_jsonl("{\"label\": 1, \"text\": \"yes\"}\n\n{\"text\": \"no\", \"label\": \"neg\"}\n", "x.jsonl");
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(f.rows[0].label, "1");
  EXPECT_EQ(f.rows[1].label, "neg");
  EXPECT_EQ(f.rows[1].line, 3);
  expect_error<FormatError>([] { parse_labelled_jsonl("{\"label\": 1, \"text\": \"a\"}\n{oops\n", "x.jsonl"); },
                            {"x.jsonl:2", "not a JSON object"});
  expect_error<FormatError>([] { parse_labelled_jsonl("[1, 2]\n", "x.jsonl"); }, {"x.jsonl:1"});
  expect_error<FormatError>([] { parse_labelled_jsonl("{\"text\": \"a\"}\n", "x.jsonl"); },
                            {"x.jsonl:1", "no \"label\""});
  expect_error<FormatError>([] { parse_labelled_jsonl("{\"label\": 0.5, \"text\": \"a\"}\n", "x.jsonl"); },
                            {"x.jsonl:1", "string or an integer"});
  expect_error<FormatError>([] { parse_labelled_jsonl("{\"label\": 1, \"text\": 3}\n", "x.jsonl"); },
                            {"x.jsonl:1", "text"});
}

TEST(LabelledText, ReadsFilesByExtension) {
  focus::testing::TempDir dir;
  write(dir.file("a.tsv"), "x\thello\n");
  write(dir.file("a.jsonl"), "{\"label\": \"x\", \"text\": \"hello\"}\n");
  EXPECT_EQ(read_labelled_file(dir.file("a.tsv")).rows.at(0).text, "hello");
  EXPECT_EQ(read_labelled_file(dir.file("a.jsonl")).rows.at(0).text, "hello");
  EXPECT_THROW(read_labelled_file(dir.file("missing.tsv")), IOError);
}

TEST(LabelledText, SentimentArrayDropsOnlyTheEmptyTrailer) {
  focus::testing::TempDir dir;
  write(dir.file("s.json"),
        R"([{"text": "Good.", "class": 1}, {"text": "Bad.", "class": 0}, {"text": "", "class": null}])");
  const LabelledFile f = read_sentiment_file(dir.file("s.json"));
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(f.rows[0].label, "positive");
  EXPECT_EQ(f.rows[1].label, "negative");
  write(dir.file("b.json"), R"([{"text": "Good.", "class": 2}, {"text": "", "class": null}])");
  expect_error<FormatError>([&] { read_sentiment_file(dir.file("b.json")); }, {"b.json", "record 1", "0 or 1"});
  write(dir.file("c.json"), R"([{"text": "", "class": null}, {"text": "Fine", "class": 1}])");
  expect_error<FormatError>([&] { read_sentiment_file(dir.file("c.json")); }, {"record 1"});
  expect_error<IOError>([&] { read_sentiment_file(dir.file("none.json")); }, {"fetch-data.sh"});
}

TEST(LabelledText, NormalisesCaseAndPunctuation) {
  EXPECT_EQ(normalize_for_classification("Great phone!!  I DON'T care."),
            "great phone ! ! i don't care .");
  EXPECT_EQ(normalize_for_classification("'quoted' (x)"), "' quoted ' ( x )");
  EXPECT_EQ(normalize_for_classification("Café"), "café");  // non-ASCII bytes kept as they are
}

TEST(LabelledText, EncodesTruncatesAndPads) {
  const auto tok = train_tokenizer("word", {"good phone", "bad phone"});
  const auto a = encode_for_classification(*tok, "Good PHONE, good!", 3);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], tok->vocab().id("good"));
  EXPECT_EQ(a[1], tok->vocab().id("phone"));
  EXPECT_EQ(a[2], Vocab::kUnk);  // ","
  EXPECT_EQ(encode_for_classification(*tok, "   ", 3), std::vector<int64_t>{Vocab::kUnk});
  const std::vector<int64_t> r1 = {5, 6, 7}, r2 = {8};
  const Tensor x = pad_token_rows({&r1, &r2});
  EXPECT_EQ(x.shape(), Shape({2, 3}));
  EXPECT_EQ(x.to_vector<int64_t>(), (std::vector<int64_t>{5, 6, 7, 8, 0, 0}));
}
