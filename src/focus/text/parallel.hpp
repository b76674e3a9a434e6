// Parallel text: `source<TAB>target` files (UTF-8, one pair a line) and grouping of the
// references of repeated sources (CMUdict words with several pronunciations, or any TSV where a
// source has several translations).
#pragma once
#include <string>
#include <vector>

namespace focus {

struct TextPair {
  std::string source, target;
};

// Blank (all-whitespace) lines are skipped; a trailing CR is dropped. FormatError naming the file
// and line number for a line without exactly one tab, an empty (all-whitespace) side, or bytes
// that are not UTF-8. IOError when the file cannot be opened. Fields are kept as written.
std::vector<TextPair> load_tsv(const std::string& path);

struct RefGroup {
  std::string source;
  std::vector<std::string> refs;  // every target of `source`, in file order (repeats kept)
};

// One group per distinct source, in order of first appearance.
std::vector<RefGroup> group_references(const std::vector<TextPair>& pairs);

}  // namespace focus
