// Error scores of a classifier's predictions for routing to human review: how likely the model's
// answer (the argmax) is wrong, from its (calibrated) class probabilities; higher = more likely
// wrong, every score in [0, 1]:
//   least-confidence  1 - p_max (with calibrated probabilities, the estimated error probability)
//   margin            1 - (p_1 - p_2), p_1 >= p_2 the two largest
//   entropy           -sum_k p_k log p_k / log K (normalised entropy; 0 for K = 1)
// and the review priority: the expected cost of answering with the argmax, sum_y p_y cost[pred][y]
// with an optional per-class cost matrix (no matrix: every error costs 1, so it is 1 - p_max).
//
//   const double s = error_score(probs, ScoreKind::Margin);
//   const double prio = expected_cost(probs, cost);  // cost: CostMatrix or nullptr
//
// Letters: K classes. Probability rows are spans of K doubles (not checked to sum to 1).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace focus::review {

enum class ScoreKind { LeastConfidence, Margin, Entropy };

// "least-confidence" | "margin" | "entropy" (ValueError naming the choices otherwise).
ScoreKind parse_score_kind(std::string_view name);
const char* score_kind_name(ScoreKind kind);

// The score of one row (ValueError for an empty row or a non-finite value).
double error_score(std::span<const double> probs, ScoreKind kind);
// Scores of every row of probs (N, K) (ShapeError unless probs.size() is a multiple of K >= 1).
std::vector<double> error_scores(std::span<const double> probs, int64_t K, ScoreKind kind);
// The argmax of a row (the first maximum).
int64_t predicted_class(std::span<const double> probs);

// cost(predicted, true) >= 0, (K, K) row-major, rows = the model's answer.
class CostMatrix {
 public:
  // ValueError unless values.size() == K * K, every value finite and >= 0.
  CostMatrix(int64_t K, std::vector<double> values);
  // Parses "c00,c01,...;c10,..." (rows separated by ';'); ValueError naming the problem.
  static CostMatrix parse(std::string_view text, int64_t K);
  int64_t classes() const { return K_; }
  double operator()(int64_t predicted, int64_t truth) const { return v_[size_t(predicted * K_ + truth)]; }

 private:
  int64_t K_;
  std::vector<double> v_;
};

// Expected cost of answering with the argmax: sum_y p_y cost(pred, y), or 1 - p_max without a
// matrix. ShapeError when the matrix's K differs from the row's.
double expected_cost(std::span<const double> probs, const CostMatrix* cost = nullptr);

}  // namespace focus::review
