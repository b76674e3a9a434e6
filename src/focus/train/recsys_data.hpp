// Sequential recommendation runs (task recsys): the users' leave-one-out sequences as the
// ClassificationData the one trainer (train/trainer.hpp) takes, and one whole run: read the
// interactions (or generate the synthetic ones), train sasrec with train/Trainer (validation:
// HR@1 on each user's validation item, for early stopping and model_best), then rank every
// user's test item with the best model and the baselines (popularity, first-order Markov; the
// generator's oracle on synthetic data): HR@10 / NDCG@10 against every item and, apart, against
// sampled negatives (data/ranking_metrics.hpp).
// Samples are users. A training draw of user u is its training fold's last max_len + 1 items:
// x the first of them, y the next item of each position ((B, L) I64 each, right-padded: x with
// 0, y with -100). An evaluation draw is the validation history's last max_len items (x, (B, L)
// right-padded) and the validation item (y, (B)).
#pragma once
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/data/classification_data.hpp"
#include "focus/data/interactions.hpp"
#include "focus/data/ranking_metrics.hpp"
#include "focus/train/config.hpp"

namespace focus {

class Communicator;
class Classifier;

class SequenceData : public ClassificationData {
 public:
  // `d` must outlive it; every user must have 3 or more items (the readers' default).
  SequenceData(const Interactions& d, int64_t max_len);
  const std::vector<int64_t>& labels() const override { return labels_; }
  const std::vector<std::string>& class_names() const override { return d_.item_names; }
  Batch batch(std::span<const int64_t> indices, const BatchDraw& draw) const override;
  std::string unit() const override { return "users"; }
  // Users whose training fold has a next item to predict (2 or more items).
  std::vector<int64_t> trainable_users() const;

 private:
  const Interactions& d_;
  int64_t max_len_;
  std::vector<int64_t> labels_;  // each user's validation item
};

// Histories (each non-empty) as a (B, L) I64 batch: each one's last max_len items, right-padded
// with 0 to the longest.
Tensor history_batch(const std::vector<std::span<const int64_t>>& histories, int64_t max_len);
// A sasrec (any Classifier over item histories) as a BatchScorer: eval mode, no graph.
BatchScorer model_scorer(Classifier& model, int64_t max_len);

// One run: trains, scores the test fold, writes cfg.out/test_metrics.json and returns it
// ({"model": {...}, "popularity": {...}, "markov": {...}, "oracle": {...}, ...}). With a
// communicator of several ranks (mpirun), each trains on its shard of every global batch
// (train/trainer.hpp); rank 0 alone writes and evaluates, the other ranks return {}.
nlohmann::json run_recsys(const TrainConfig& cfg, Communicator* comm = nullptr);

}  // namespace focus
