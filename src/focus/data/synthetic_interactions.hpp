// A synthetic interaction generator with known structure, for the sequential recommender: its
// true next-item distribution is known, so the best achievable HR@10 / NDCG@10 can be computed.
//   Items 1..items belong to `clusters` taste clusters (item j to cluster (j - 1) % clusters).
//   Each user has one taste cluster (uniform). Each item has `successors` fixed next items
//   (uniform, not itself) with weights proportional to 1 / (s + 1), s = 0, 1, ...
//   Global popularity: Zipf(zipf) over a seeded permutation of the items; taste within a
//   cluster: Zipf(zipf) over a second permutation of its items.
//   A user's sequence (length uniform in [min_len, max_len]) starts with a draw from the taste
//   and popularity parts; every next item j after item p is drawn from
//     P(j | user u, p) = p_transition T[p][j] + p_taste Taste[cluster(u)][j] + (rest) Pop[j].
// The oracle knows the user's cluster and the previous item, so it ranks by the true P; its
// expected HR@k over a fold is the mean over users of the sum of the k largest P(j | u, p) and its
// expected NDCG@k the mean of sum_r P_(r) / log2(r + 2), r < k (P_(r) the r-th largest). No
// ranker that sees only the history can expect more, so this is the best achievable figure.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/data/interactions.hpp"
#include "focus/data/ranking_metrics.hpp"

namespace focus {

struct SyntheticConfig {
  int64_t users = 3000, items = 500, clusters = 10, successors = 3;
  int64_t min_len = 20, max_len = 40;
  double p_transition = 0.5, p_taste = 0.4;  // the rest: global popularity
  double zipf = 1.0;
  uint64_t seed = 7;
  static SyntheticConfig from_json(const nlohmann::json& j);  // ValueError on bad keys/values
  nlohmann::json to_json() const;
};

class SyntheticInteractions {
 public:
  explicit SyntheticInteractions(const SyntheticConfig& cfg);
  const Interactions& data() const { return data_; }
  const SyntheticConfig& config() const { return cfg_; }
  int64_t user_cluster(int64_t u) const { return user_cluster_.at(size_t(u)); }
  // The true distribution of the item after `prev` for user u (prev 0: the first item): V
  // probabilities, [0] (padding) = 0.
  std::vector<double> next_distribution(int64_t u, int64_t prev) const;
  // The oracle's expected HR@k / NDCG@k on the fold's targets (users = every user).
  RankingMetrics oracle_expected(Fold fold, int64_t k = 10) const;
  // The oracle as a scorer (its realised metrics, for tests).
  BatchScorer oracle_scorer() const;

 private:
  SyntheticConfig cfg_;
  Interactions data_;
  std::vector<int64_t> user_cluster_;
  std::vector<double> pop_;                   // (V)
  std::vector<std::vector<double>> taste_;    // (clusters, V)
  std::vector<std::vector<std::pair<int64_t, double>>> next_;  // per item: (successor, weight)
};

}  // namespace focus
