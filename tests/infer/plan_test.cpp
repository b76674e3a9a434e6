// The planner's decisions (infer/plan.hpp) on hand-made measurements: the budget parser and its
// errors, the latency model with an arrival rate, the Pareto front, the choice (most accurate
// within the budget; ties by p99), the refusal naming the closest variant, and the chart.
#include "focus/infer/plan.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {

using testing::expect_error;

VariantResult vr(const std::string& w, int t, int64_t b, double acc, double p50, double p99, double rss) {
  VariantResult r;
  r.v = Variant{w, t, b};
  r.accuracy = acc, r.batch_p50_ms = p50, r.batch_p99_ms = p99, r.rss_mb = rss;
  return r;
}

TEST(Plan, BudgetParsing) {
  const Budget b = parse_budget(" p99_ms=5 , rss_mb=150");
  EXPECT_DOUBLE_EQ(b.p99_ms, 5);
  EXPECT_DOUBLE_EQ(b.rss_mb, 150);
  EXPECT_TRUE(std::isinf(parse_budget("rss_mb=80").p99_ms));
  expect_error<ValueError>([] { parse_budget("p95_ms=5"); }, {"unknown key 'p95_ms'"});
  expect_error<ValueError>([] { parse_budget("p99_ms=5,p99_ms=6"); }, {"given twice"});
  expect_error<ValueError>([] { parse_budget("p99_ms=-1"); }, {"positive number", "'-1'"});
  expect_error<ValueError>([] { parse_budget("p99_ms=fast"); }, {"'fast'"});
  expect_error<ValueError>([] { parse_budget("p99_ms"); }, {"KEY=VALUE"});
  expect_error<ValueError>([] { parse_budget(" , "); }, {"sets no limit"});
}

TEST(Plan, FrontAndChoice) {
  std::vector<VariantResult> r = {
      vr("f32", 1, 1, 0.920, 2.0, 2.6, 60),   // accurate, slow-ish
      vr("f32", 2, 1, 0.920, 1.4, 1.9, 58),   // same accuracy, faster, smaller: dominates the one above
      vr("int8", 2, 1, 0.915, 0.8, 1.1, 50),  // less accurate, fastest, smallest
      vr("int8", 1, 8, 0.915, 5.0, 6.0, 55),  // dominated by int8 t2 b1
  };
  Budget b = parse_budget("p99_ms=2.5,rss_mb=100");
  evaluate(r, b);
  mark_front(r);
  EXPECT_FALSE(r[0].on_front);
  EXPECT_TRUE(r[1].on_front);
  EXPECT_TRUE(r[2].on_front);
  EXPECT_FALSE(r[3].on_front);
  EXPECT_FALSE(r[0].within);
  EXPECT_NE(r[0].misses.find("p99 2.60 > 2.5 ms"), std::string::npos) << r[0].misses;
  PlanChoice c = choose(r, b);
  ASSERT_TRUE(c.index);
  EXPECT_EQ(*c.index, 1u);  // the most accurate within
  // A tighter budget: only int8 fits; the choice differs from f32.
  b = parse_budget("p99_ms=1.5");
  evaluate(r, b);
  c = choose(r, b);
  ASSERT_TRUE(c.index);
  EXPECT_EQ(*c.index, 2u);
  // Nothing fits: refused, the closest named (int8 t2 b1 is 1.1 / 0.5 = 2.2x over).
  b = parse_budget("p99_ms=0.5");
  evaluate(r, b);
  c = choose(r, b);
  EXPECT_FALSE(c.index);
  EXPECT_EQ(c.closest, 2u);
  EXPECT_NEAR(c.closest_overrun, 2.2, 1e-9);
  // A minimum accuracy rules out int8.
  b = parse_budget("p99_ms=1.5");
  b.min_accuracy = 0.918;
  evaluate(r, b);
  EXPECT_FALSE(choose(r, b).index);
  expect_error<ValueError>([] { choose({}, Budget{}); }, {"no variant"});
}

TEST(Plan, AnArrivalRateAddsTheFillTimeAndNeedsTheThroughput) {
  std::vector<VariantResult> r = {vr("f32", 2, 8, 0.9, 4.0, 5.0, 70), vr("f32", 2, 1, 0.9, 1.0, 1.5, 60)};
  Budget b = parse_budget("p99_ms=10");
  b.qps = 1000;
  evaluate(r, b);
  EXPECT_DOUBLE_EQ(r[0].p99_ms, 5.0 + 7.0);  // 7 more requests at 1000/s fill the batch
  EXPECT_DOUBLE_EQ(r[0].throughput, 2000);
  EXPECT_FALSE(r[0].within);                 // 12 ms > 10
  EXPECT_DOUBLE_EQ(r[1].throughput, 1000);
  EXPECT_TRUE(r[1].within);                  // 1,000 items/s just sustains 1,000 req/s
  b.qps = 1500;
  evaluate(r, b);
  EXPECT_FALSE(r[1].within);
  EXPECT_NE(r[1].misses.find("1000 < 1500 items/s"), std::string::npos) << r[1].misses;
}

TEST(Plan, TheSloLadderStepsToFasterVariantsOfTheSameShape) {
  std::vector<VariantResult> r = {vr("f32", 2, 8, 0.92, 4.0, 5.0, 70), vr("int8", 2, 8, 0.915, 2.0, 2.5, 60),
                                  vr("int8", 1, 8, 0.915, 1.0, 1.5, 60), vr("f32", 2, 1, 0.92, 1.0, 1.2, 60)};
  evaluate(r, Budget{});
  EXPECT_EQ(slo_ladder(r, 0), (std::vector<size_t>{0, 1}));  // same threads and batch only
  EXPECT_EQ(slo_ladder(r, 1), (std::vector<size_t>{1}));     // f32 t2 b8 is slower: no step to it
  // A candidate file's variants (a pruned model, say) are another model: no step between files.
  VariantResult pruned = vr("int8", 2, 8, 0.91, 1.0, 1.2, 50);
  pruned.v.file = 1;
  pruned.v.label = "pruned";
  r.push_back(pruned);
  evaluate(r, Budget{});
  EXPECT_EQ(slo_ladder(r, 0), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(r[4].v.name(), "pruned int8 t2 b8");
  EXPECT_EQ(r[0].v.name(), "f32 t2 b8");
}

TEST(Plan, TheChartShowsEveryVariantAndTheChoice) {
  std::vector<VariantResult> r = {vr("f32", 1, 1, 0.92, 2.0, 2.6, 60), vr("int8", 1, 1, 0.91, 1.0, 1.2, 50)};
  const Budget b = parse_budget("p99_ms=2");
  evaluate(r, b);
  mark_front(r);
  const std::string svg = front_svg(r, b, choose(r, b), "test");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("f32 t1 b1"), std::string::npos);
  EXPECT_NE(svg.find("int8 t1 b1"), std::string::npos);
  EXPECT_NE(svg.find("budget p99 2 ms"), std::string::npos);
  EXPECT_NE(svg.find("stroke-width=\"2\""), std::string::npos);  // the chosen one ringed
  EXPECT_EQ(variant_json(r[1])["weights"], "int8");
}

}  // namespace
}  // namespace focus
