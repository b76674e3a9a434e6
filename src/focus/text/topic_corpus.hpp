// The topic task: Reuters-21578 ModApte Corn and Grain (binary: about the topic or not) from
// Debian's weka package (tools/fetch-data.sh puts <data cache>/topic/Reuters{Corn,Grain}-
// {train,test}.arff there: 1,554 training and 604 test documents, the same documents for both
// topics with different labels; Corn 45 / 24 positives, Grain 103 / 57). Written as
// `label<TAB>text` TSV splits for `focus train --task text` (`focus text-import topic`): labels
// "<topic>" (positive) and "other"; whitespace collapsed; valid_share of the training documents
// held out (stratified, seeded) for early stopping and calibration; the ModApte test set is test.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace focus {

const std::vector<std::string>& topic_names();  // {"corn", "grain"}
// <cache_dir>/topic/Reuters<Topic>-<part>.arff (part: train | test); cache_dir "" = the data cache.
std::string topic_arff_path(const std::string& topic, const std::string& part,
                            const std::string& cache_dir = "");

struct TopicSplitCounts {
  int64_t train = 0, valid = 0, test = 0;
  int64_t train_positive = 0, valid_positive = 0, test_positive = 0;
};
// Reads the topic's two ARFF files (text/arff.hpp; IOError with the fetch command when missing)
// and writes `dir`/{train,valid,test}.tsv atomically. ValueError for an unknown topic or a
// valid_share outside (0, 1).
TopicSplitCounts write_topic_split(const std::string& topic, const std::string& cache_dir,
                                   double valid_share, uint64_t seed, const std::string& dir);

}  // namespace focus
