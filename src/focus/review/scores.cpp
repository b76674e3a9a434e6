// Error scores and review priorities (see scores.hpp).
#include "focus/review/scores.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "focus/tensor/error.hpp"

namespace focus::review {

ScoreKind parse_score_kind(std::string_view name) {
  if (name == "least-confidence") return ScoreKind::LeastConfidence;
  if (name == "margin") return ScoreKind::Margin;
  if (name == "entropy") return ScoreKind::Entropy;
  throw ValueError(fmt::format("unknown score '{}' (least-confidence | margin | entropy)", name));
}

const char* score_kind_name(ScoreKind kind) {
  switch (kind) {
    case ScoreKind::LeastConfidence: return "least-confidence";
    case ScoreKind::Margin: return "margin";
    case ScoreKind::Entropy: return "entropy";
  }
  return "?";
}

int64_t predicted_class(std::span<const double> probs) {
  return int64_t(std::max_element(probs.begin(), probs.end()) - probs.begin());
}

double error_score(std::span<const double> probs, ScoreKind kind) {
  FOCUS_CHECK(!probs.empty(), ValueError, "error_score: an empty probability row");
  for (size_t k = 0; k < probs.size(); ++k)
    FOCUS_CHECK(std::isfinite(probs[k]), ValueError, "error_score: probability {} is {}", k, probs[k]);
  double p1 = -1, p2 = 0;  // the two largest
  for (double p : probs) {
    if (p > p1) {
      p2 = std::max(p1, 0.0);
      p1 = p;
    } else {
      p2 = std::max(p2, p);
    }
  }
  switch (kind) {
    case ScoreKind::LeastConfidence: return std::clamp(1 - p1, 0.0, 1.0);
    case ScoreKind::Margin: return std::clamp(1 - (p1 - p2), 0.0, 1.0);
    case ScoreKind::Entropy: {
      if (probs.size() == 1) return 0;
      double h = 0;
      for (double p : probs)
        if (p > 0) h -= p * std::log(p);
      return std::clamp(h / std::log(double(probs.size())), 0.0, 1.0);
    }
  }
  return 0;
}

std::vector<double> error_scores(std::span<const double> probs, int64_t K, ScoreKind kind) {
  FOCUS_CHECK(K >= 1 && probs.size() % size_t(K) == 0, ShapeError,
              "error_scores: {} values are not rows of {} classes", probs.size(), K);
  std::vector<double> out(probs.size() / size_t(K));
  for (size_t i = 0; i < out.size(); ++i) out[i] = error_score(probs.subspan(i * size_t(K), size_t(K)), kind);
  return out;
}

CostMatrix::CostMatrix(int64_t K, std::vector<double> values) : K_(K), v_(std::move(values)) {
  FOCUS_CHECK(K >= 1 && v_.size() == size_t(K * K), ValueError,
              "cost matrix: {} values for {} classes (need {})", v_.size(), K, K * K);
  for (size_t i = 0; i < v_.size(); ++i)
    FOCUS_CHECK(std::isfinite(v_[i]) && v_[i] >= 0, ValueError,
                "cost matrix: cost({}, {}) = {} must be finite and >= 0", i / size_t(K), i % size_t(K), v_[i]);
}

CostMatrix CostMatrix::parse(std::string_view text, int64_t K) {
  std::vector<double> v;
  int64_t rows = 0;
  std::stringstream all{std::string(text)};
  std::string row, cell;
  while (std::getline(all, row, ';')) {
    std::stringstream r(row);
    int64_t cols = 0;
    while (std::getline(r, cell, ',')) {
      size_t used = 0;
      double x = 0;
      try {
        x = std::stod(cell, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      FOCUS_CHECK(used > 0 && cell.find_first_not_of(" \t", used) == std::string::npos, ValueError,
                  "cost matrix: '{}' in row {} is not a number", cell, rows);
      v.push_back(x);
      ++cols;
    }
    FOCUS_CHECK(cols == K, ValueError, "cost matrix: row {} has {} values, need {}", rows, cols, K);
    ++rows;
  }
  FOCUS_CHECK(rows == K, ValueError, "cost matrix: {} rows, need {} (rows separated by ';')", rows, K);
  return CostMatrix(K, std::move(v));
}

double expected_cost(std::span<const double> probs, const CostMatrix* cost) {
  FOCUS_CHECK(!probs.empty(), ValueError, "expected_cost: an empty probability row");
  const int64_t pred = predicted_class(probs);
  if (!cost) return std::clamp(1 - probs[size_t(pred)], 0.0, 1.0);
  FOCUS_CHECK(cost->classes() == int64_t(probs.size()), ShapeError,
              "expected_cost: a {}-class cost matrix for {} probabilities", cost->classes(), probs.size());
  double c = 0;
  for (size_t y = 0; y < probs.size(); ++y) c += probs[y] * (*cost)(pred, int64_t(y));
  return c;
}

}  // namespace focus::review
