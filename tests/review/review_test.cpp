// The routing library's pieces checked against hand-computed values: error scores, cost
// matrices, binomial tails and Clopper-Pearson bounds, risk-coverage curves and AURC, budgeted
// deferral and system accuracy, the bounded review queue.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/review/capacity.hpp"
#include "focus/review/risk_control.hpp"
#include "focus/review/scores.hpp"
#include "focus/review/selective.hpp"
#include "focus/tensor/error.hpp"
#include "support/expect_error.hpp"

namespace focus::review {
namespace {

using focus::testing::expect_error;
using focus::ShapeError;
using focus::ValueError;

TEST(ReviewScores, ByHand) {
  const std::vector<double> p = {0.1, 0.6, 0.3};
  EXPECT_NEAR(error_score(p, ScoreKind::LeastConfidence), 0.4, 1e-15);
  EXPECT_NEAR(error_score(p, ScoreKind::Margin), 1 - (0.6 - 0.3), 1e-15);
  const double h = -(0.1 * std::log(0.1) + 0.6 * std::log(0.6) + 0.3 * std::log(0.3)) / std::log(3.0);
  EXPECT_NEAR(error_score(p, ScoreKind::Entropy), h, 1e-15);
  EXPECT_EQ(predicted_class(p), 1);
  // Certain: every score 0; uniform: least-confidence 1 - 1/K, margin and entropy 1.
  const std::vector<double> one = {0, 1, 0}, flat = {0.25, 0.25, 0.25, 0.25};
  for (ScoreKind k : {ScoreKind::LeastConfidence, ScoreKind::Margin, ScoreKind::Entropy})
    EXPECT_NEAR(error_score(one, k), 0, 1e-15) << score_kind_name(k);
  EXPECT_NEAR(error_score(flat, ScoreKind::LeastConfidence), 0.75, 1e-15);
  EXPECT_NEAR(error_score(flat, ScoreKind::Margin), 1, 1e-15);
  EXPECT_NEAR(error_score(flat, ScoreKind::Entropy), 1, 1e-15);
  EXPECT_EQ(parse_score_kind("margin"), ScoreKind::Margin);
  expect_error<ValueError>([] { parse_score_kind("max"); }, {"'max'", "least-confidence"});
  const std::vector<double> two = {0.1, 0.6, 0.3, 0.5, 0.5, 0.0};
  const auto s = error_scores(two, 3, ScoreKind::LeastConfidence);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_NEAR(s[1], 0.5, 1e-15);
  expect_error<ShapeError>([&] { error_scores(two, 4, ScoreKind::Margin); }, {"6 values"});
}

TEST(ReviewScores, ExpectedCost) {
  const std::vector<double> p = {0.1, 0.6, 0.3};
  EXPECT_NEAR(expected_cost(p), 0.4, 1e-15);
  // Answering 1 costs 5 when the truth is 2, 1 when it is 0.
  const CostMatrix c = CostMatrix::parse("0,1,1; 1,0,5; 1,1,0", 3);
  EXPECT_NEAR(expected_cost(p, &c), 0.1 * 1 + 0.3 * 5, 1e-15);
  expect_error<ValueError>([] { CostMatrix::parse("0,1;1", 2); }, {"row 1 has 1 values"});
  expect_error<ValueError>([] { CostMatrix::parse("0,x;1,0", 2); }, {"'x'"});
  expect_error<ValueError>([] { CostMatrix(2, {0, -1, 1, 0}); }, {"cost(0, 1) = -1"});
  const CostMatrix c2(2, {0, 1, 1, 0});
  expect_error<ShapeError>([&] { expected_cost(p, &c2); }, {"2-class cost matrix for 3"});
}

TEST(ReviewBounds, BinomialAndClopperPearson) {
  // P(X <= 2), X ~ Bin(5, 0.3) = 0.16807 + 0.36015 + 0.3087.
  EXPECT_NEAR(binomial_cdf(2, 5, 0.3), 0.83692, 1e-12);
  EXPECT_EQ(binomial_cdf(5, 5, 0.3), 1);
  EXPECT_EQ(binomial_cdf(-1, 5, 0.3), 0);
  // No errors in n: upper = 1 - alpha^(1/n); all errors: lower = alpha^(1/n).
  EXPECT_NEAR(clopper_pearson_upper(0, 100, 0.05), 1 - std::pow(0.05, 0.01), 1e-10);
  EXPECT_NEAR(clopper_pearson_lower(100, 100, 0.05), std::pow(0.05, 0.01), 1e-10);
  EXPECT_EQ(clopper_pearson_upper(7, 7, 0.05), 1);
  EXPECT_EQ(clopper_pearson_lower(0, 7, 0.05), 0);
  // The bound is where the tail equals alpha.
  const double u = clopper_pearson_upper(12, 400, 0.01);
  EXPECT_NEAR(binomial_cdf(12, 400, u), 0.01, 1e-9);
  EXPECT_GT(u, 12.0 / 400);
  const double l = clopper_pearson_lower(12, 400, 0.01);
  EXPECT_NEAR(1 - binomial_cdf(11, 400, l), 0.01, 1e-9);
  expect_error<ValueError>([] { clopper_pearson_upper(5, 4, 0.1); }, {"k 5 n 4"});
}

TEST(ReviewSelective, RiskCoverageByHand) {
  // Sorted by score: wrong pattern 0, 1, 0, 1 -> risks 0, 1/2, 1/3, 1/2; AURC = (0 + .5 + 1/3 + .5) / 4.
  const std::vector<double> s = {0.4, 0.1, 0.3, 0.2};
  const std::vector<uint8_t> wrong = {1, 0, 0, 1};
  const RiskCoverage rc = risk_coverage(s, wrong);
  ASSERT_EQ(rc.risk.size(), 4u);
  EXPECT_NEAR(rc.risk[1], 0.5, 1e-15);
  EXPECT_NEAR(rc.risk[2], 1.0 / 3, 1e-15);
  EXPECT_NEAR(rc.coverage[2], 0.75, 1e-15);
  EXPECT_NEAR(rc.aurc, (0 + 0.5 + 1.0 / 3 + 0.5) / 4, 1e-15);
}

TEST(ReviewSelective, BudgetsAndSystemAccuracy) {
  const std::vector<double> s = {0.4, 0.1, 0.3, 0.2, 0.9};
  EXPECT_EQ(defer_top(s, 0.4), (std::vector<uint8_t>{1, 0, 0, 0, 1}));
  EXPECT_EQ(defer_top(s, 0.0), (std::vector<uint8_t>(5, 0)));
  EXPECT_EQ(defer_above(s, 0.3), (std::vector<uint8_t>{1, 0, 0, 0, 1}));
  const auto r = defer_random(1000, 0.1, 3);
  EXPECT_EQ(std::count(r.begin(), r.end(), 1), 100);
  EXPECT_NE(r, defer_random(1000, 0.1, 4));
  const std::vector<uint8_t> model = {0, 1, 1, 1, 0}, reviewer = {1, 1, 1, 0, 1};
  EXPECT_NEAR(system_accuracy(model, reviewer, defer_top(s, 0.4)), 1.0, 1e-15);
  EXPECT_NEAR(system_accuracy(model, reviewer, std::vector<uint8_t>(5, 0)), 0.6, 1e-15);
  expect_error<ValueError>([&] { defer_top(s, 1.5); }, {"budget 1.5"});
}

TEST(ReviewQueueTest, PriorityOverflowAndAudits) {
  ReviewQueue q(3);
  EXPECT_FALSE(q.push({1, 0.5, 0, false}));
  EXPECT_FALSE(q.push({2, 0.9, 0, false}));
  EXPECT_FALSE(q.push({3, 0.01, 0, true}));  // an audit: low priority, never pushed out
  // Full: a lower priority than every queued item does not fit itself...
  auto out = q.push({4, 0.2, 1, false});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->id, 4);
  // ...a higher one pushes out the lowest non-audit item (id 1), not the audit.
  out = q.push({5, 0.7, 1, false});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->id, 1);
  EXPECT_EQ(q.size(), 3);
  // Review order: audits first, then by priority.
  EXPECT_EQ(q.pop()->id, 3);
  EXPECT_EQ(q.pop()->id, 2);
  EXPECT_EQ(q.pop()->id, 5);
  EXPECT_FALSE(q.pop());
  expect_error<ValueError>([] { ReviewQueue(0); }, {"cap 0"});
}

}  // namespace
}  // namespace focus::review
