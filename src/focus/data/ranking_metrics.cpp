// Ranking metrics and count baselines (see ranking_metrics.hpp).
#include "focus/data/ranking_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <unordered_map>

#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

int64_t rank_of_target(std::span<const float> scores, int64_t target, std::span<const int64_t> candidates) {
  FOCUS_CHECK(target >= 0 && target < int64_t(scores.size()), ValueError,
              "rank_of_target: target {} not in [0, {})", target, scores.size());
  const float t = scores[size_t(target)];
  int64_t rank = 0;
  for (int64_t c : candidates)
    if (c != target && scores[size_t(c)] >= t) ++rank;
  return rank;
}

int64_t rank_of_target(std::span<const float> scores, int64_t target) {
  FOCUS_CHECK(target >= 1 && target < int64_t(scores.size()), ValueError,
              "rank_of_target: target {} not an item in [1, {})", target, scores.size());
  const float t = scores[size_t(target)];
  int64_t rank = 0;
  for (size_t c = 1; c < scores.size(); ++c)
    if (int64_t(c) != target && scores[c] >= t) ++rank;
  return rank;
}

double hit_at(int64_t rank, int64_t k) { return rank < k ? 1.0 : 0.0; }
double ndcg_at(int64_t rank, int64_t k) { return rank < k ? 1.0 / std::log2(double(rank) + 2.0) : 0.0; }

RankingReport evaluate_ranking(const Interactions& d, Fold fold, const BatchScorer& scorer,
                               int64_t k, int64_t negatives, uint64_t seed, int64_t batch) {
  FOCUS_CHECK(fold != Fold::Train, ValueError, "evaluate_ranking: rank the Valid or Test fold");
  FOCUS_CHECK(k >= 1 && negatives >= 1 && batch >= 1, ValueError,
              "evaluate_ranking: k {}, negatives {}, batch {} must be positive", k, negatives, batch);
  const int64_t V = d.num_items(), U = d.num_users();
  RankingReport r;
  r.k = k;
  r.negatives = negatives;
  std::vector<float> scores;
  std::vector<char> seen(size_t(V), 0);
  for (int64_t u0 = 0; u0 < U; u0 += batch) {
    const int64_t B = std::min(batch, U - u0);
    std::vector<int64_t> users(static_cast<size_t>(B), 0);
    std::vector<std::span<const int64_t>> hist;
    for (int64_t b = 0; b < B; ++b) {
      users[size_t(b)] = u0 + b;
      hist.push_back(leave_one_out_history(d.sequences[size_t(u0 + b)], fold));
    }
    scores.assign(size_t(B * V), 0.f);
    scorer(users, hist, scores);
    for (int64_t b = 0; b < B; ++b) {
      const auto& seq = d.sequences[size_t(u0 + b)];
      const int64_t target = leave_one_out_target(seq, fold);
      const std::span<const float> row(scores.data() + b * V, size_t(V));
      const int64_t full = rank_of_target(row, target);
      r.full.hr += hit_at(full, k);
      r.full.ndcg += ndcg_at(full, k);
      // Negatives: uniform over the items the user never interacted with (whole sequence).
      for (int64_t i : seq) seen[size_t(i)] = 1;
      std::vector<int64_t> pool;
      for (int64_t i = 1; i < V; ++i)
        if (!seen[size_t(i)]) pool.push_back(i);
      for (int64_t i : seq) seen[size_t(i)] = 0;
      Rng rng(seed * 0x9E3779B97F4A7C15ull + uint64_t(u0 + b));
      const int64_t m = std::min<int64_t>(negatives, int64_t(pool.size()));
      for (int64_t j = 0; j < m; ++j)  // partial Fisher-Yates: the first m of a uniform shuffle
        std::swap(pool[size_t(j)], pool[size_t(j + rng.randint(int64_t(pool.size()) - j))]);
      const int64_t sampled = rank_of_target(row, target, std::span<const int64_t>(pool.data(), size_t(m)));
      r.sampled.hr += hit_at(sampled, k);
      r.sampled.ndcg += ndcg_at(sampled, k);
    }
  }
  r.full.users = r.sampled.users = U;
  for (RankingMetrics* m : {&r.full, &r.sampled})
    if (U > 0) {
      m->hr /= double(U);
      m->ndcg /= double(U);
    }
  return r;
}

std::vector<double> item_popularity(const Interactions& d) {
  std::vector<double> pop(size_t(d.num_items()), 0.0);
  for (const auto& seq : d.sequences)
    if (seq.size() >= 3)
      for (int64_t i : leave_one_out_history(seq, Fold::Train)) pop[size_t(i)] += 1;
  return pop;
}

BatchScorer popularity_scorer(const Interactions& d) {
  auto pop = std::make_shared<std::vector<double>>(item_popularity(d));
  return [pop](std::span<const int64_t> users, const std::vector<std::span<const int64_t>>&,
               std::span<float> scores) {
    const size_t V = pop->size();
    for (size_t b = 0; b < users.size(); ++b)
      for (size_t i = 0; i < V; ++i) scores[b * V + i] = float((*pop)[i]);
  };
}

BatchScorer markov_scorer(const Interactions& d) {
  struct Table {
    std::vector<double> pop;
    std::vector<std::unordered_map<int64_t, double>> next;  // per item: next item -> count
  };
  auto t = std::make_shared<Table>();
  t->pop = item_popularity(d);
  t->next.resize(size_t(d.num_items()));
  double total = 0;
  for (const auto& seq : d.sequences) {
    if (seq.size() < 3) continue;
    const auto h = leave_one_out_history(seq, Fold::Train);
    for (size_t i = 1; i < h.size(); ++i) t->next[size_t(h[i - 1])][h[i]] += 1;
  }
  for (double p : t->pop) total += p;
  for (double& p : t->pop) p /= 1.0 + total;  // < 1: below one observed transition
  return [t](std::span<const int64_t> users, const std::vector<std::span<const int64_t>>& hist,
             std::span<float> scores) {
    const size_t V = t->pop.size();
    for (size_t b = 0; b < users.size(); ++b) {
      float* row = scores.data() + b * V;
      for (size_t i = 0; i < V; ++i) row[i] = float(t->pop[i]);
      if (hist[b].empty()) continue;
      for (const auto& [j, c] : t->next[size_t(hist[b].back())]) row[size_t(j)] += float(c);
    }
  };
}

}  // namespace focus
