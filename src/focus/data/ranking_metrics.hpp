// Next-item ranking metrics of the sequential recommender and its two count baselines.
//   rank of the target: the candidates scored above it plus those tied with it (ties count
//   against the target, so a constant scorer never hits); HR@k = [rank < k];
//   NDCG@k = 1 / log2(rank + 2) when rank < k, else 0 (one relevant item: IDCG = 1).
//   evaluate_ranking ranks each user's fold target (data/interactions.hpp leave-one-out) against
//   every item (padding excluded) and, reported apart, against `negatives` items drawn uniformly
//   from those the user never interacted with (the SASRec protocol; the sampled figure is known
//   to overstate and reorder models: Krichene and Rendle, KDD 2020).
//   Baselines, fitted on the training fold only: popularity (item counts) and a first-order
//   Markov chain (counts of item -> next item, ties broken by popularity).
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "focus/data/interactions.hpp"

namespace focus {

// rank of scores[target] among scores[c] for the candidates c (target included or not).
int64_t rank_of_target(std::span<const float> scores, int64_t target, std::span<const int64_t> candidates);
// rank among every item 1..V-1 of scores (V = scores.size(); index 0 is padding).
int64_t rank_of_target(std::span<const float> scores, int64_t target);
double hit_at(int64_t rank, int64_t k);
double ndcg_at(int64_t rank, int64_t k);

struct RankingMetrics {
  double hr = 0, ndcg = 0;  // means over users
  int64_t users = 0;
};
struct RankingReport {
  int64_t k = 10, negatives = 100;
  RankingMetrics full;     // against every item
  RankingMetrics sampled;  // against the target and `negatives` sampled items
};

// Scores every item (V floats per user, row-major into `scores`, already sized B * V) for the
// users `users` whose histories are `histories`.
using BatchScorer = std::function<void(std::span<const int64_t> users,
                                       const std::vector<std::span<const int64_t>>& histories,
                                       std::span<float> scores)>;

// Every user's `fold` target (Valid or Test) ranked by `scorer` given the fold's history, in
// batches of `batch` users. The negatives of user u are drawn from (seed, u) alone.
RankingReport evaluate_ranking(const Interactions& d, Fold fold, const BatchScorer& scorer,
                               int64_t k = 10, int64_t negatives = 100, uint64_t seed = 1,
                               int64_t batch = 256);

// Item counts of the training fold (V; [0] = 0).
std::vector<double> item_popularity(const Interactions& d);
// Scores: the training fold's item counts, whatever the history.
BatchScorer popularity_scorer(const Interactions& d);
// Scores: counts of (last history item -> j) in the training fold plus popularity / (1 + total
// count) as a tie-break below one transition.
BatchScorer markov_scorer(const Interactions& d);

}  // namespace focus
