// Synthetic interaction generator and its oracle (see synthetic_interactions.hpp).
#include "focus/data/synthetic_interactions.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

SyntheticConfig SyntheticConfig::from_json(const nlohmann::json& j) {
  FOCUS_CHECK(j.is_object(), ValueError, "synthetic config: expected a JSON object, got {}", j.dump());
  SyntheticConfig c;
  for (const auto& [key, value] : j.items()) {
    auto num = [&](auto& field) {
      FOCUS_CHECK(value.is_number(), ValueError, "synthetic config: '{}' must be a number, got {}", key, value.dump());
      field = value.get<std::remove_reference_t<decltype(field)>>();
    };
    if (key == "users") num(c.users);
    else if (key == "items") num(c.items);
    else if (key == "clusters") num(c.clusters);
    else if (key == "successors") num(c.successors);
    else if (key == "min_len") num(c.min_len);
    else if (key == "max_len") num(c.max_len);
    else if (key == "p_transition") num(c.p_transition);
    else if (key == "p_taste") num(c.p_taste);
    else if (key == "zipf") num(c.zipf);
    else if (key == "seed") num(c.seed);
    else throw ValueError(fmt::format("synthetic config: unknown key '{}' (known: users, items, clusters, "
                                      "successors, min_len, max_len, p_transition, p_taste, zipf, seed)", key));
  }
  FOCUS_CHECK(c.users >= 1 && c.clusters >= 1 && c.items >= c.clusters && c.items >= 2, ValueError,
              "synthetic config: need users >= 1, clusters >= 1, items >= clusters and >= 2");
  FOCUS_CHECK(c.successors >= 1 && c.successors < c.items, ValueError,
              "synthetic config: successors {} must be in [1, items)", c.successors);
  FOCUS_CHECK(c.min_len >= 3 && c.max_len >= c.min_len, ValueError,
              "synthetic config: need 3 <= min_len <= max_len (leave-one-out takes two items)");
  FOCUS_CHECK(c.p_transition >= 0 && c.p_taste >= 0 && c.p_transition + c.p_taste <= 1, ValueError,
              "synthetic config: p_transition and p_taste must be >= 0 with a sum <= 1");
  FOCUS_CHECK(c.zipf >= 0, ValueError, "synthetic config: zipf must be >= 0");
  return c;
}

nlohmann::json SyntheticConfig::to_json() const {
  return {{"users", users},     {"items", items},         {"clusters", clusters},
          {"successors", successors}, {"min_len", min_len}, {"max_len", max_len},
          {"p_transition", p_transition}, {"p_taste", p_taste}, {"zipf", zipf}, {"seed", seed}};
}

namespace {

// One draw from weights w (sum > 0).
int64_t draw(const std::vector<double>& w, Rng& rng) {
  double total = 0;
  for (double x : w) total += x;
  double u = rng.uniform() * total;
  for (size_t i = 0; i < w.size(); ++i) {
    u -= w[i];
    if (u < 0 && w[i] > 0) return int64_t(i);
  }
  for (size_t i = w.size(); i-- > 0;)
    if (w[i] > 0) return int64_t(i);
  return 0;
}

std::vector<int64_t> permutation(int64_t n, Rng& rng) {
  std::vector<int64_t> p(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(rng.randint(i + 1))]);
  return p;
}

}  // namespace

SyntheticInteractions::SyntheticInteractions(const SyntheticConfig& cfg) : cfg_(cfg) {
  const int64_t V = cfg.items + 1, C = cfg.clusters;
  Rng rng(cfg.seed);
  // Popularity: Zipf over a permutation of items 1..items.
  pop_.assign(size_t(V), 0.0);
  const auto perm = permutation(cfg.items, rng);
  for (int64_t r = 0; r < cfg.items; ++r) pop_[size_t(perm[size_t(r)] + 1)] = 1.0 / std::pow(double(r + 1), cfg.zipf);
  // Taste: Zipf within each cluster over a second permutation.
  taste_.assign(size_t(C), std::vector<double>(size_t(V), 0.0));
  const auto perm2 = permutation(cfg.items, rng);
  std::vector<int64_t> rank_in_cluster(size_t(C), 0);
  for (int64_t r = 0; r < cfg.items; ++r) {
    const int64_t j = perm2[size_t(r)] + 1, c = (j - 1) % C;
    taste_[size_t(c)][size_t(j)] = 1.0 / std::pow(double(++rank_in_cluster[size_t(c)]), cfg.zipf);
  }
  for (auto* w : {&pop_}) {
    double s = 0;
    for (double x : *w) s += x;
    for (double& x : *w) x /= s;
  }
  for (auto& w : taste_) {
    double s = 0;
    for (double x : w) s += x;
    for (double& x : w) x /= s;
  }
  // Transitions: `successors` distinct items other than the item itself, weights 1 / (s + 1).
  next_.resize(size_t(V));
  for (int64_t i = 1; i < V; ++i) {
    double s = 0;
    for (int64_t k = 0; k < cfg.successors; ++k) s += 1.0 / double(k + 1);
    while (int64_t(next_[size_t(i)].size()) < cfg.successors) {
      const int64_t j = 1 + rng.randint(cfg.items);
      const bool dup = j == i || std::any_of(next_[size_t(i)].begin(), next_[size_t(i)].end(),
                                              [&](const auto& e) { return e.first == j; });
      if (!dup) next_[size_t(i)].push_back({j, 1.0 / double(next_[size_t(i)].size() + 1) / s});
    }
  }
  // Users.
  data_.item_names.push_back("<pad>");
  for (int64_t j = 1; j < V; ++j) data_.item_names.push_back(std::to_string(j));
  for (int64_t u = 0; u < cfg.users; ++u) {
    user_cluster_.push_back(rng.randint(C));
    const int64_t n = cfg.min_len + rng.randint(cfg.max_len - cfg.min_len + 1);
    std::vector<int64_t> seq;
    int64_t prev = 0;
    for (int64_t t = 0; t < n; ++t) {
      prev = draw(next_distribution(u, prev), rng);
      seq.push_back(prev);
    }
    data_.user_names.push_back("u" + std::to_string(u + 1));
    data_.sequences.push_back(std::move(seq));
  }
  data_.lines = data_.num_interactions();
}

std::vector<double> SyntheticInteractions::next_distribution(int64_t u, int64_t prev) const {
  const size_t V = pop_.size();
  FOCUS_CHECK(prev >= 0 && prev < int64_t(V), ValueError, "next_distribution: item {} not in [0, {})", prev, V);
  const double pt = prev == 0 ? 0.0 : cfg_.p_transition;
  const double rest = 1.0 - cfg_.p_transition - cfg_.p_taste;
  const double scale = 1.0 / (pt + cfg_.p_taste + rest);  // the first item has no transition part
  const auto& taste = taste_[size_t(user_cluster(u))];
  std::vector<double> p(V);
  for (size_t j = 0; j < V; ++j) p[j] = scale * (cfg_.p_taste * taste[j] + rest * pop_[j]);
  if (prev > 0)
    for (const auto& [j, w] : next_[size_t(prev)]) p[size_t(j)] += scale * pt * w;
  p[0] = 0;
  return p;
}

RankingMetrics SyntheticInteractions::oracle_expected(Fold fold, int64_t k) const {
  RankingMetrics m;
  for (int64_t u = 0; u < data_.num_users(); ++u) {
    const auto h = leave_one_out_history(data_.sequences[size_t(u)], fold);
    std::vector<double> p = next_distribution(u, h.back());
    const size_t top = std::min(size_t(k), p.size());
    std::partial_sort(p.begin(), p.begin() + std::ptrdiff_t(top), p.end(), std::greater<>());
    for (size_t r = 0; r < top; ++r) {
      m.hr += p[r];
      m.ndcg += p[r] / std::log2(double(r) + 2.0);
    }
  }
  m.users = data_.num_users();
  if (m.users > 0) {
    m.hr /= double(m.users);
    m.ndcg /= double(m.users);
  }
  return m;
}

BatchScorer SyntheticInteractions::oracle_scorer() const {
  return [this](std::span<const int64_t> users, const std::vector<std::span<const int64_t>>& hist,
                std::span<float> scores) {
    const size_t V = pop_.size();
    for (size_t b = 0; b < users.size(); ++b) {
      const auto p = next_distribution(users[b], hist[b].empty() ? 0 : hist[b].back());
      for (size_t j = 0; j < V; ++j) scores[b * V + j] = float(p[j]);
    }
  };
}

}  // namespace focus
