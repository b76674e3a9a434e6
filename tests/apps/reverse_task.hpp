// The CLI tests' tiny translation task: each word of a small alphabet mapped to its reversal,
// written as `source<TAB>target` TSVs (train: 4 copies of 8 words; valid: one copy).
#pragma once
#include <fstream>
#include <string>

namespace focus::testing {

inline void write_reverse_task(const std::string& train_tsv, const std::string& valid_tsv) {
  std::ofstream tr(train_tsv), va(valid_tsv);
  const char* words[] = {"ab", "ba", "abc", "cab", "bca", "aab", "cc", "acb"};
  for (int rep = 0; rep < 4; ++rep)
    for (const char* w : words) {
      const std::string s = w, r(s.rbegin(), s.rend());
      tr << s << "\t" << r << "\n";
      if (rep == 0) va << s << "\t" << r << "\n";
    }
}

}  // namespace focus::testing
