// Recommender: a trained sequential recommender (sasrec, `focus train --task recsys`) as a
// predictor: a user's history of item ids (as the training file named them, oldest first) in,
// the top k items out, the history's own items excluded. Thread-safe (one forward at a time).
//   Recommender r(load_classifier("runs/recsys/model_best.safetensors"));
//   auto top = r.recommend({"1193", "661", "914"}, 10);  // [{item, score, probability}, ...]
// An unknown item id or an empty history is an InputError naming the position in the history;
// a history longer than the model's max_len keeps its last max_len items.
#pragma once
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "focus/infer/model_file.hpp"

namespace focus {

struct Recommendation {
  std::string item;
  double score = 0;        // the model's logit
  double probability = 0;  // softmax over every item (the excluded ones included)
};

class Recommender {
 public:
  // FormatError unless the file's model takes item histories (input_kind "items").
  explicit Recommender(LoadedClassifier lc, const std::string& path = "");
  // The history's item indices; InputError for an empty history or an unknown item id.
  std::vector<int64_t> item_indices(const std::vector<std::string>& history) const;
  // k in [1, items]; fewer come back when the history leaves fewer items.
  std::vector<Recommendation> recommend(const std::vector<std::string>& history, int64_t k) const;
  int64_t num_items() const { return int64_t(lc_.info.class_names.size()) - 1; }  // padding aside
  int64_t max_len() const { return max_len_; }
  const ModelInfo& info() const { return lc_.info; }

 private:
  LoadedClassifier lc_;
  std::unordered_map<std::string, int64_t> ids_;
  int64_t max_len_ = 1;
  mutable std::mutex mu_;
};

}  // namespace focus
