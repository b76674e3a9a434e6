// Selective classification with a guaranteed risk (see risk_control.hpp).
#include "focus/review/risk_control.hpp"

#include <algorithm>
#include <cmath>

#include "focus/tensor/error.hpp"

namespace focus::review {

namespace {

double log_choose(int64_t n, int64_t k) {
  return std::lgamma(double(n) + 1) - std::lgamma(double(k) + 1) - std::lgamma(double(n - k) + 1);
}

// Per candidate: accepted and errors on the calibration split.
struct Counts {
  std::vector<int64_t> accepted, errors;
};
Counts count_at(const std::vector<double>& grid, std::span<const double> scores,
                std::span<const uint8_t> wrong) {
  FOCUS_CHECK(scores.size() == wrong.size(), ShapeError, "risk target: {} scores and {} labels",
              scores.size(), wrong.size());
  FOCUS_CHECK(!scores.empty(), ValueError, "risk target: no calibration samples");
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) {
    FOCUS_CHECK(std::isfinite(scores[i]), ValueError, "risk target: score {} is {}", i, scores[i]);
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  Counts c;
  size_t i = 0;
  int64_t err = 0;
  for (double t : grid) {  // grid increasing: one sweep
    while (i < order.size() && scores[order[i]] <= t) err += wrong[order[i++]] ? 1 : 0;
    c.accepted.push_back(int64_t(i));
    c.errors.push_back(err);
  }
  return c;
}

void check_levels(const RiskTargetOptions& opt) {
  FOCUS_CHECK(opt.epsilon > 0 && opt.epsilon < 1, ValueError, "risk target: epsilon {} must be in (0, 1)",
              opt.epsilon);
  FOCUS_CHECK(opt.delta > 0 && opt.delta < 1, ValueError, "risk target: delta {} must be in (0, 1)",
              opt.delta);
}

RiskThreshold pick(const std::vector<double>& grid, const Counts& c, size_t j, int64_t n, double bound) {
  RiskThreshold r;
  r.found = true;
  r.threshold = grid[j];
  r.n = n;
  r.accepted = c.accepted[j];
  r.errors = c.errors[j];
  r.coverage = double(r.accepted) / double(n);
  r.empirical_risk = r.accepted ? double(r.errors) / double(r.accepted) : 0;
  r.risk_bound = bound;
  return r;
}

}  // namespace

double binomial_cdf(int64_t k, int64_t n, double p) {
  FOCUS_CHECK(n >= 0 && p >= 0 && p <= 1, ValueError, "binomial_cdf: n {} and p {} (need n >= 0, p in [0, 1])", n, p);
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p == 0) return 1;
  if (p == 1) return 0;
  const double lp = std::log(p), lq = std::log1p(-p);
  // Terms i = 0..k in log space, summed relative to the largest.
  std::vector<double> t(size_t(k + 1));
  double m = -INFINITY;
  for (int64_t i = 0; i <= k; ++i) {
    t[size_t(i)] = log_choose(n, i) + double(i) * lp + double(n - i) * lq;
    m = std::max(m, t[size_t(i)]);
  }
  double s = 0;
  for (double v : t) s += std::exp(v - m);
  return std::min(1.0, std::exp(m + std::log(s)));
}

double clopper_pearson_upper(int64_t k, int64_t n, double alpha) {
  FOCUS_CHECK(0 <= k && k <= n && alpha > 0 && alpha < 1, ValueError,
              "clopper_pearson: k {} n {} alpha {} (need 0 <= k <= n, 0 < alpha < 1)", k, n, alpha);
  if (k == n) return 1;
  double lo = double(k) / double(n), hi = 1;  // cdf(k; p) falls from >= 1/2-ish at k/n to 0 at 1
  for (int it = 0; it < 100 && hi - lo > 1e-12; ++it) {
    const double mid = (lo + hi) / 2;
    (binomial_cdf(k, n, mid) > alpha ? lo : hi) = mid;
  }
  return hi;
}

double clopper_pearson_lower(int64_t k, int64_t n, double alpha) {
  FOCUS_CHECK(0 <= k && k <= n && alpha > 0 && alpha < 1, ValueError,
              "clopper_pearson: k {} n {} alpha {} (need 0 <= k <= n, 0 < alpha < 1)", k, n, alpha);
  if (k == 0) return 0;
  // P(X >= k | p) = 1 - cdf(k - 1; p) rises with p.
  double lo = 0, hi = double(k) / double(n);
  for (int it = 0; it < 100 && hi - lo > 1e-12; ++it) {
    const double mid = (lo + hi) / 2;
    (1 - binomial_cdf(k - 1, n, mid) < alpha ? lo : hi) = mid;
  }
  return lo;
}

std::vector<double> threshold_grid(const RiskTargetOptions& opt) {
  FOCUS_CHECK(opt.grid >= 2 && opt.grid_min > 0 && opt.grid_min < opt.score_max, ValueError,
              "risk target: grid of {} from {} to {} (need >= 2 points, 0 < min < max)", opt.grid,
              opt.grid_min, opt.score_max);
  std::vector<double> g(size_t(opt.grid));
  const double r = std::log(opt.score_max / opt.grid_min);
  for (int64_t j = 0; j < opt.grid; ++j)
    g[size_t(j)] = opt.grid_min * std::exp(r * double(j) / double(opt.grid - 1));
  g.back() = opt.score_max;
  return g;
}

RiskThreshold risk_target_threshold(std::span<const double> scores, std::span<const uint8_t> wrong,
                                    const RiskTargetOptions& opt) {
  check_levels(opt);
  const std::vector<double> grid = threshold_grid(opt);
  const Counts c = count_at(grid, scores, wrong);
  const double alpha = opt.delta / double(grid.size());  // Bonferroni over the grid
  RiskThreshold best;
  best.n = int64_t(scores.size());
  for (size_t j = grid.size(); j-- > 0;) {  // the largest passing candidate
    if (c.accepted[j] == 0) break;          // smaller thresholds accept nothing either
    const double u = clopper_pearson_upper(c.errors[j], c.accepted[j], alpha);
    if (u <= opt.epsilon) return pick(grid, c, j, best.n, u);
  }
  return best;
}

RiskThreshold naive_threshold(std::span<const double> scores, std::span<const uint8_t> wrong,
                              const RiskTargetOptions& opt) {
  check_levels(opt);
  const std::vector<double> grid = threshold_grid(opt);
  const Counts c = count_at(grid, scores, wrong);
  RiskThreshold best;
  best.n = int64_t(scores.size());
  for (size_t j = grid.size(); j-- > 0;) {
    if (c.accepted[j] == 0) break;
    const double r = double(c.errors[j]) / double(c.accepted[j]);
    if (r <= opt.epsilon) return pick(grid, c, j, best.n, r);
  }
  return best;
}

}  // namespace focus::review
