// Selective classification with a guaranteed risk: choose the score threshold t (accept a
// prediction when its error score <= t, defer it to a person otherwise) on a held-out calibration
// split so that the error among the auto-accepted is <= epsilon with probability >= 1 - delta.
//
// Method (a Learn-then-Test procedure, Angelopoulos et al. 2021, with a Bonferroni correction;
// Geifman & El-Yaniv 2017's SGR is the same idea with a binary search and a union bound over its
// log2(n) steps):
//   1. A grid of M candidate thresholds fixed before looking at the data: geometric from
//      grid_min to score_max (scores.hpp's scores are in [0, 1]).
//   2. For each t_j: n_j calibration samples are accepted, k_j of them wrong. Given n_j, k_j is
//      Binomial(n_j, R(t_j)) with R(t) the true error among accepted (samples i.i.d.), so the
//      one-sided Clopper-Pearson bound U_j = upper(k_j, n_j, delta / M) satisfies
//      P(R(t_j) > U_j) <= delta / M.
//   3. t = the largest t_j with U_j <= epsilon. By the union bound, with probability >= 1 - delta
//      no chosen t_j has R(t_j) > epsilon, whatever the data. None passes: defer everything.
// The guarantee is marginal over calibration splits drawn from the deployment distribution
// (exchangeable with the stream); it says nothing under a distribution shift.
//
//   const RiskThreshold r = risk_target_threshold(scores, wrong, {.epsilon = 0.02, .delta = 0.1});
//   bool accept = score <= r.threshold;  // r.coverage: the accepted share on the calibration split
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace focus::review {

// P(X <= k) for X ~ Binomial(n, p), summed in log space (exact to ~1e-12 for n up to 1e6).
// ValueError unless 0 <= n, p in [0, 1].
double binomial_cdf(int64_t k, int64_t n, double p);
// One-sided Clopper-Pearson bounds at level 1 - alpha for k successes in n trials: the p with
// P(X <= k | p) = alpha (upper; 1 when k == n, and 1 for n == 0) and P(X >= k | p) = alpha (lower;
// 0 when k == 0). Found by bisection to 1e-12. ValueError unless 0 <= k <= n and 0 < alpha < 1.
double clopper_pearson_upper(int64_t k, int64_t n, double alpha);
double clopper_pearson_lower(int64_t k, int64_t n, double alpha);

struct RiskTargetOptions {
  double epsilon = 0.02;    // the error allowed among the auto-accepted
  double delta = 0.1;       // the probability the guarantee may fail
  int64_t grid = 50;        // M candidate thresholds
  double grid_min = 1e-4;   // the smallest candidate
  double score_max = 1.0;   // the largest (accept everything at or below)
};

struct RiskThreshold {
  double threshold = -1;      // accept score <= threshold; -1 (nothing passes): defer everything
  bool found = false;
  double coverage = 0;        // accepted share of the calibration split
  double empirical_risk = 0;  // error among the accepted calibration samples
  double risk_bound = 1;      // U_j of the chosen threshold
  int64_t n = 0, accepted = 0, errors = 0;
};

// The candidate grid of `opt` (M values, increasing). ValueError unless 0 < grid_min < score_max
// and M >= 2.
std::vector<double> threshold_grid(const RiskTargetOptions& opt);
// The threshold per the header. scores and wrong (1 = the model's answer was wrong) of the
// calibration samples; ShapeError when their sizes differ; ValueError for epsilon or delta
// outside (0, 1), no samples, or a non-finite score.
RiskThreshold risk_target_threshold(std::span<const double> scores, std::span<const uint8_t> wrong,
                                    const RiskTargetOptions& opt = {});

// The naive choice, without a bound: the largest candidate whose empirical risk <= epsilon (for
// comparison: it misses the target about half the time).
RiskThreshold naive_threshold(std::span<const double> scores, std::span<const uint8_t> wrong,
                              const RiskTargetOptions& opt = {});

}  // namespace focus::review
