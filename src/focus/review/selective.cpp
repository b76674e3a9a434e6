// Risk-coverage curves and budgeted deferral (see selective.hpp).
#include "focus/review/selective.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus::review {

namespace {
int64_t budget_count(int64_t n, double budget) {
  FOCUS_CHECK(budget >= 0 && budget <= 1, ValueError, "review budget {} must be in [0, 1]", budget);
  return std::min<int64_t>(n, int64_t(std::llround(budget * double(n))));
}
// Indices by score, ascending; ties by index.
std::vector<size_t> by_score(std::span<const double> scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  return order;
}
}  // namespace

RiskCoverage risk_coverage(std::span<const double> scores, std::span<const uint8_t> wrong) {
  FOCUS_CHECK(scores.size() == wrong.size(), ShapeError, "risk_coverage: {} scores and {} labels",
              scores.size(), wrong.size());
  FOCUS_CHECK(!scores.empty(), ValueError, "risk_coverage: no items");
  const std::vector<size_t> order = by_score(scores);
  RiskCoverage rc;
  const double N = double(scores.size());
  int64_t err = 0;
  double sum = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    err += wrong[order[k]] ? 1 : 0;
    const double r = double(err) / double(k + 1);
    rc.coverage.push_back(double(k + 1) / N);
    rc.risk.push_back(r);
    sum += r;
  }
  rc.aurc = sum / N;
  return rc;
}

std::vector<uint8_t> defer_top(std::span<const double> scores, double budget) {
  const int64_t m = budget_count(int64_t(scores.size()), budget);
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  // Descending score, ties by the lower index.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<uint8_t> d(scores.size(), 0);
  for (int64_t i = 0; i < m; ++i) d[order[size_t(i)]] = 1;
  return d;
}

std::vector<uint8_t> defer_random(int64_t n, double budget, uint64_t seed) {
  FOCUS_CHECK(n >= 0, ValueError, "defer_random: {} items", n);
  const int64_t m = budget_count(n, budget);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t(0));
  Rng rng(seed);
  for (int64_t i = 0; i < m; ++i) std::swap(idx[size_t(i)], idx[size_t(i + rng.randint(n - i))]);  // partial Fisher-Yates
  std::vector<uint8_t> d(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < m; ++i) d[size_t(idx[size_t(i)])] = 1;
  return d;
}

std::vector<uint8_t> defer_above(std::span<const double> scores, double threshold) {
  std::vector<uint8_t> d(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) d[i] = scores[i] > threshold ? 1 : 0;
  return d;
}

double system_accuracy(std::span<const uint8_t> model_right, std::span<const uint8_t> reviewer_right,
                       std::span<const uint8_t> deferred) {
  FOCUS_CHECK(model_right.size() == reviewer_right.size() && model_right.size() == deferred.size(),
              ShapeError, "system_accuracy: {} model, {} reviewer and {} deferral flags",
              model_right.size(), reviewer_right.size(), deferred.size());
  if (model_right.empty()) return 0;
  int64_t right = 0;
  for (size_t i = 0; i < deferred.size(); ++i) right += (deferred[i] ? reviewer_right[i] : model_right[i]) ? 1 : 0;
  return double(right) / double(deferred.size());
}

}  // namespace focus::review
