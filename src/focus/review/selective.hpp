// Offline evaluation of review routing on a labelled stream: the risk-coverage curve and its area
// (AURC, Geifman et al. 2019), which items a policy defers at a review budget, and the system
// accuracy when deferred items take a reviewer's answer.
//
// A budget b defers round(b N) of the N items: the highest-scoring ones for a score policy
// (ties broken by the lower index), a seeded uniform sample for the random policy. A reviewer's
// answer is right or wrong per item (drawn once by the caller, so every policy meets the same
// reviewer; common random numbers): system accuracy = (right model answers kept + right reviewer
// answers on the deferred) / N.
//
//   const RiskCoverage rc = risk_coverage(scores, wrong);          // rc.aurc
//   const auto deferred = defer_top(scores, 0.1);                  // (N) 0/1
//   const double acc = system_accuracy(model_right, reviewer_right, deferred);
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace focus::review {

struct RiskCoverage {
  std::vector<double> coverage, risk;  // (N) accept the k lowest scores: k / N, errors_k / k
  double aurc = 0;                     // mean of risk over k = 1..N
};
// ShapeError when the sizes differ; ValueError for no items.
RiskCoverage risk_coverage(std::span<const double> scores, std::span<const uint8_t> wrong);

// 0/1 per item: the round(budget * N) highest scores deferred. ValueError unless budget in [0, 1].
std::vector<uint8_t> defer_top(std::span<const double> scores, double budget);
// 0/1 per item: round(budget * N) items drawn uniformly without replacement (seeded).
std::vector<uint8_t> defer_random(int64_t n, double budget, uint64_t seed);
// 0/1 per item: score > threshold.
std::vector<uint8_t> defer_above(std::span<const double> scores, double threshold);

// Share of items answered right: model_right where not deferred, reviewer_right where deferred.
// ShapeError when the sizes differ.
double system_accuracy(std::span<const uint8_t> model_right, std::span<const uint8_t> reviewer_right,
                       std::span<const uint8_t> deferred);

}  // namespace focus::review
