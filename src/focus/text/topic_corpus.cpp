// The Reuters Corn / Grain splits (topic_corpus.hpp).
#include "focus/text/topic_corpus.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "focus/data/classification_data.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/tensor/error.hpp"
#include "focus/text/arff.hpp"
#include "focus/text/cmudict.hpp"
#include "focus/text/strings.hpp"

namespace focus {

const std::vector<std::string>& topic_names() {
  static const std::vector<std::string> names = {"corn", "grain"};
  return names;
}

std::string topic_arff_path(const std::string& topic, const std::string& part,
                            const std::string& cache_dir) {
  std::string cap = topic;
  if (!cap.empty()) cap[0] = char(std::toupper(static_cast<unsigned char>(cap[0])));
  const std::string rel = "topic/Reuters" + cap + "-" + part + ".arff";
  return cache_dir.empty() ? data_cache_file(rel) : cache_dir + "/" + rel;
}

namespace {

LabelledFile read_part(const std::string& topic, const std::string& part, const std::string& cache_dir) {
  const std::string path = topic_arff_path(topic, part, cache_dir);
  FOCUS_CHECK(std::filesystem::exists(path), IOError, "topic: {} is missing (run tools/fetch-data.sh)", path);
  LabelledFile f = read_arff_texts(path);
  for (LabelledText& r : f.rows) {
    FOCUS_CHECK(r.label == "0" || r.label == "1", FormatError, "{}:{}: class \"{}\", expected 0 or 1",
                path, r.line, r.label);
    r.label = r.label == "1" ? topic : "other";
    r.text = normalize_whitespace(r.text);
  }
  return f;
}

std::string tsv(const std::vector<const LabelledText*>& rows) {
  std::string out;
  for (const LabelledText* r : rows) out += r->label + "\t" + r->text + "\n";
  return out;
}

int64_t positives(const std::vector<const LabelledText*>& rows, const std::string& topic) {
  int64_t n = 0;
  for (const LabelledText* r : rows) n += r->label == topic ? 1 : 0;
  return n;
}

}  // namespace

TopicSplitCounts write_topic_split(const std::string& topic, const std::string& cache_dir,
                                   double valid_share, uint64_t seed, const std::string& dir) {
  const auto& names = topic_names();
  FOCUS_CHECK(std::find(names.begin(), names.end(), topic) != names.end(), ValueError,
              "unknown topic \"{}\" (corn, grain)", topic);
  FOCUS_CHECK(valid_share > 0 && valid_share < 1, ValueError, "validation share {} must be in (0, 1)", valid_share);
  const LabelledFile train = read_part(topic, "train", cache_dir);
  const LabelledFile test = read_part(topic, "test", cache_dir);
  std::vector<int64_t> labels;
  for (const LabelledText& r : train.rows) labels.push_back(r.label == topic ? 1 : 0);
  const auto n_valid = int64_t(std::llround(valid_share * double(labels.size())));
  const TrainValSplit s = split_train_val(labels, 2, n_valid, seed);
  std::vector<const LabelledText*> tr, va, te;
  for (int64_t i : s.train) tr.push_back(&train.rows[size_t(i)]);
  for (int64_t i : s.val) va.push_back(&train.rows[size_t(i)]);
  for (const LabelledText& r : test.rows) te.push_back(&r);
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/train.tsv", tsv(tr));
  write_file_atomic(dir + "/valid.tsv", tsv(va));
  write_file_atomic(dir + "/test.tsv", tsv(te));
  return {int64_t(tr.size()), int64_t(va.size()), int64_t(te.size()), positives(tr, topic),
          positives(va, topic), positives(te, topic)};
}

}  // namespace focus
