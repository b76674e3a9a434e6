// Labelled text for classification: readers of `label<TAB>text` TSV and JSON lines
// (`{"label": ..., "text": ...}` one object a line; the label a string or an integer), the
// sentiment sentences of npm sentiment@5.0.2 (a JSON array of {"text", "class"}), and the text
// normalisation every text classifier applies before its tokenizer.
// Errors: FormatError naming the file and the line (TSV, JSON lines) or the record (the JSON
// array) for a line that is not valid UTF-8, has no tab, an empty label or text, is not a JSON
// object with a string "text" and a string or integer "label". Blank lines are skipped (counted).
//
//   const LabelledFile f = read_labelled_file("train.tsv");  // .jsonl / .json: JSON lines
//   for (const LabelledText& r : f.rows) ... r.label, r.text
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

class Tokenizer;

struct LabelledText {
  std::string label;
  std::string text;
  int64_t line = 0;  // 1-based line in its file (record index + 1 for JSON arrays)
};

struct LabelledFile {
  std::string path;
  std::vector<LabelledText> rows;
  int64_t blank_lines = 0;  // skipped
};

// JSON lines when the name ends in .jsonl or .json, else TSV. IOError when it cannot be read.
LabelledFile read_labelled_file(const std::string& path);
// The same from text already in memory; `name` stands for the file in messages.
LabelledFile parse_labelled_tsv(std::string_view content, const std::string& name);
LabelledFile parse_labelled_jsonl(std::string_view content, const std::string& name);

// The sentiment sites of npm sentiment@5.0.2 and where tools/fetch-data.sh puts them.
const std::vector<std::string>& sentiment_sites();  // {"amazon", "imdb", "yelp"}
// <cache_dir>/sentiment/<site>.json; cache_dir "" = the data cache (text/cmudict.hpp
// data_cache_file: $FOCUS_DATA_DIR, ./data-cache or the one beside the executable's directory).
std::string sentiment_path(const std::string& site, const std::string& cache_dir = "");
// A JSON array of {"text", "class": 0 | 1}; labels "negative" (0) / "positive" (1). A last
// record without a class and with empty text (the package's trailer) is dropped; any other bad
// record is a FormatError naming the file and the record. IOError with a fetch hint when missing.
LabelledFile read_sentiment_file(const std::string& path);

// Lower-cases ASCII letters and puts spaces around ASCII punctuation (an apostrophe inside a
// word stays: "don't"), then collapses whitespace: "Great phone!!" -> "great phone ! !".
std::string normalize_for_classification(std::string_view text);

// The ids a text classifier reads for `text`: normalize_for_classification, encode, the first
// max_len ids; a text with no token gives {Vocab::kUnk} (a row is never all padding).
std::vector<int64_t> encode_for_classification(const Tokenizer& tok, std::string_view text,
                                               int64_t max_len);
// Rows of ids right-padded with 0 (Vocab::kPad) to the longest: (B, L) I64, L >= 1.
Tensor pad_token_rows(const std::vector<const std::vector<int64_t>*>& rows);

}  // namespace focus
