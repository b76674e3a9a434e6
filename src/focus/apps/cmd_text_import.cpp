// `focus text-import spam|topic --out DIR`: a corpus as label<TAB>text TSV splits that
// `focus train --task text` and bench/split_baselines.py read. The same options give the same
// files.
// spam: the SpamAssassin corpus (text/spam_corpus.hpp)
//   DIR/random/{train,valid,test,sources}.tsv  stratified seeded 80/20 (valid: 10% of train)
//   DIR/time/{train,valid,test,sources}.tsv    period 1 -> period 2 (valid: 10% of period 1)
// topic: Reuters-21578 Corn and Grain (text/topic_corpus.hpp)
//   DIR/{corn,grain}/{train,valid,test}.tsv     ModApte train (valid: 10% of it) and test
// and DIR/import.json: the options and counts (spam: the mail reader's skips).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/spam_corpus.hpp"
#include "focus/text/topic_corpus.hpp"

namespace focus {

namespace {

nlohmann::json split_counts(const SpamCorpus& c, const SpamSplit& s) {
  nlohmann::json j;
  const std::pair<const char*, const std::vector<int64_t>*> parts[] = {
      {"train", &s.train}, {"valid", &s.valid}, {"test", &s.test}};
  for (const auto& [name, rows] : parts) {
    int64_t spam = 0;
    for (int64_t i : *rows) spam += c.messages[size_t(i)].spam ? 1 : 0;
    j[name] = {{"messages", rows->size()}, {"spam", spam}};
  }
  return j;
}

}  // namespace

Command add_text_import_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "text-import", "write a text corpus as label<TAB>text splits for `train --task text` "
                     "(spam: the SpamAssassin corpus, random and time splits; topic: Reuters "
                     "Corn and Grain)");
  struct Opts {
    std::string corpus, out, data_dir;
    uint64_t seed = 0;
    int64_t max_chars = 4000;
    double test_share = 0.2, valid_share = 0.1;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("CORPUS", o->corpus, "the corpus: spam | topic")->required()->check(CLI::IsMember({"spam", "topic"}));
  sub->add_option("-o,--out", o->out, "output folder")->required();
  sub->add_option("--seed", o->seed, "seed of the random split and the validation hold-outs")->capture_default_str();
  sub->add_option("--max-chars", o->max_chars, "keep the first N bytes of each message's text")->capture_default_str();
  sub->add_option("--test-share", o->test_share, "random split: share of the test part")->capture_default_str();
  sub->add_option("--valid-share", o->valid_share, "share of the training part held out for validation")->capture_default_str();
  sub->add_option("--data-dir", o->data_dir, "data cache holding spam/ or topic/ (default: the data cache)");
  return [o] {
    if (o->corpus == "topic") {
      nlohmann::json j = {{"corpus", "topic"}, {"seed", o->seed}, {"valid_share", o->valid_share}};
      for (const std::string& topic : topic_names()) {
        const TopicSplitCounts n = write_topic_split(topic, o->data_dir, o->valid_share, o->seed, o->out + "/" + topic);
        j["splits"][topic] = {{"train", n.train}, {"valid", n.valid}, {"test", n.test},
                              {"train_positive", n.train_positive}, {"valid_positive", n.valid_positive},
                              {"test_positive", n.test_positive}};
        std::printf("topic %s: %lld train (%lld positive), %lld valid (%lld), %lld test (%lld)\n",
                    topic.c_str(), (long long)n.train, (long long)n.train_positive, (long long)n.valid,
                    (long long)n.valid_positive, (long long)n.test, (long long)n.test_positive);
      }
      write_file_atomic(o->out + "/import.json", j.dump(2) + "\n");
      return 0;
    }
    const std::string dir = spam_dir(o->data_dir);
    const SpamCorpus c = read_spam_corpus(dir, o->max_chars);
    const SpamSplit random = spam_random_split(c, o->test_share, o->valid_share, o->seed);
    const SpamSplit time = spam_time_split(c, o->valid_share, o->seed);
    write_spam_split(c, random, o->out + "/random");
    write_spam_split(c, time, o->out + "/time");
    nlohmann::json j = {
        {"corpus", "spam"}, {"source", dir}, {"seed", o->seed}, {"max_chars", o->max_chars},
        {"test_share", o->test_share}, {"valid_share", o->valid_share},
        {"messages", c.messages.size()}, {"unreadable", c.unreadable},
        {"skipped_parts", c.skipped_parts}, {"charset_fallbacks", c.charset_fallbacks},
        {"html_parts", c.html_parts}, {"empty", c.empty}, {"truncated", c.truncated},
        {"kept_headers", {"Subject"}},
        {"splits", {{"random", split_counts(c, random)}, {"time", split_counts(c, time)}}}};
    write_file_atomic(o->out + "/import.json", j.dump(2) + "\n");
    std::printf("spam: %zu messages (%zu unreadable files skipped, %lld broken MIME parts skipped, "
                "%lld parts decoded by the 8-bit charset guess, %lld HTML parts, %lld empty, %lld cut to %lld bytes)\n",
                c.messages.size(), c.unreadable.size(), (long long)c.skipped_parts,
                (long long)c.charset_fallbacks, (long long)c.html_parts, (long long)c.empty,
                (long long)c.truncated, (long long)o->max_chars);
    for (const std::string& u : c.unreadable) std::printf("  skipped: %s\n", u.c_str());
    std::printf("wrote %s/{random,time}/{train,valid,test}.tsv and %s/import.json\n", o->out.c_str(), o->out.c_str());
    return 0;
  };
}

}  // namespace focus
