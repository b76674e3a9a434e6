// The latency-SLO controller on a simulated clock (serve/slo_controller.hpp): a window whose p99
// passes down_at x SLO moves one rung down at once; calm windows (p99 below up_at x SLO, or no
// traffic) move it back up only after up_windows in a row; in between it holds; too few requests
// never move it down; windows are counted for attainment; bad options are refused.
#include "focus/serve/slo_controller.hpp"

#include <gtest/gtest.h>

#include "focus/tensor/error.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {

// n requests of latency ms spread over window w (1 s windows).
void window(SloController& c, int w, int n, double ms) {
  for (int i = 0; i < n; ++i) c.observe(w + (i + 0.5) / n, ms);
}

TEST(SloController, StepsDownAtOnceAndUpAfterCalmWindows) {
  SloController c(SloOptions{.p99_ms = 10, .rungs = 3, .window_s = 1, .down_at = 0.8, .up_at = 0.4, .up_windows = 3});
  window(c, 0, 50, 5);  // 5 ms: neither hot nor calm
  EXPECT_EQ(c.level(1.0), 0);
  window(c, 1, 50, 9);  // 9 > 8: one rung down
  EXPECT_EQ(c.level(2.0), 1);
  window(c, 2, 50, 12);  // still hot: down again, then the ladder ends
  EXPECT_EQ(c.level(3.0), 2);
  window(c, 3, 50, 30);
  EXPECT_EQ(c.level(4.0), 2);
  EXPECT_EQ(c.stats().steps_down, 2);
  // Calm for two windows: holds; a middling window resets the run; three calm in a row: up one.
  window(c, 4, 50, 2);
  window(c, 5, 50, 2);
  EXPECT_EQ(c.level(6.0), 2);
  window(c, 6, 50, 6);
  window(c, 7, 50, 2);
  window(c, 8, 50, 2);
  EXPECT_EQ(c.level(9.0), 2);
  window(c, 9, 50, 2);
  EXPECT_EQ(c.level(10.0), 1);
  EXPECT_EQ(c.stats().steps_up, 1);
  // Attainment: windows 2 (12 ms) and 3 (30 ms) missed the 10 ms SLO.
  EXPECT_EQ(c.stats().windows, 10);
  EXPECT_EQ(c.stats().windows_met, 8);
  EXPECT_DOUBLE_EQ(c.stats().last_p99_ms, 2);
}

TEST(SloController, TheP99NotTheMeanDecidesAndFewRequestsDoNotMoveIt) {
  SloController c(SloOptions{.p99_ms = 10, .rungs = 2, .min_samples = 10});
  window(c, 0, 5, 50);  // hot but only 5 requests
  EXPECT_EQ(c.level(1.0), 0);
  EXPECT_EQ(c.stats().windows_met, 0);  // still counted as a missed window
  for (int i = 0; i < 100; ++i) c.observe(1 + i / 100.0, i < 98 ? 1.0 : 40.0);  // 2% slow: p99 = 40 ms
  EXPECT_EQ(c.level(2.0), 1);
}

TEST(SloController, IdleTimeIsCalm) {
  SloController c(SloOptions{.p99_ms = 10, .rungs = 2, .up_windows = 3});
  window(c, 0, 50, 20);
  EXPECT_EQ(c.level(1.0), 1);
  EXPECT_EQ(c.level(3.5), 1);  // two empty windows
  EXPECT_EQ(c.level(4.0), 0);  // the third
  // A very long gap is skipped without a loop per window, and still counts as calm.
  window(c, 4, 50, 20);
  EXPECT_EQ(c.level(5.0), 1);
  EXPECT_EQ(c.level(1e7), 0);
}

// The batch cap keeps a batch's estimated compute within share x SLO: 0.25 x 20 ms at 0.2 ms an
// item is 25 items; never below one item nor above max_batch; max_batch while nothing is measured.
TEST(SloRules, BatchCapKeepsTheBatchComputeWithinItsShare) {
  EXPECT_EQ(slo_batch_cap(20, 0.25, 0.2, 64), 25);
  EXPECT_EQ(slo_batch_cap(20, 0.25, 0.21, 64), 23);  // rounded down: 24 x 0.21 ms passes 5 ms
  EXPECT_EQ(slo_batch_cap(20, 0.5, 0.2, 64), 50);
  EXPECT_EQ(slo_batch_cap(20, 0.25, 0.01, 64), 64);  // the cap never raises max_batch
  EXPECT_EQ(slo_batch_cap(20, 0.25, 30, 64), 1);     // one item always runs
  EXPECT_EQ(slo_batch_cap(20, 0.25, 0, 64), 64);     // not measured yet
}

// A request's estimate is what it has spent, the rest of the batch in progress, and the compute
// of the items ahead and its own; the batch in progress counts (the estimate before it did not).
TEST(SloRules, EstimateCountsTheTimeSpentTheBatchInProgressAndTheQueue) {
  EXPECT_DOUBLE_EQ(slo_estimated_latency_ms(0, 0, 0, 1, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(slo_estimated_latency_ms(2, 3, 10, 2, 0.5), 2 + 3 + 6);
  EXPECT_DOUBLE_EQ(slo_estimated_latency_ms(0, -4, 0, 1, 0.5), 0.5);  // a batch past its estimate: nothing left
}

// A window in which admission shed requests is not calm, however low its p99: the rung holds
// the SLO only by refusing load, so the controller does not step up to a slower one.
TEST(SloController, AWindowThatShedIsNotCalm) {
  SloController c(SloOptions{.p99_ms = 10, .rungs = 2, .up_windows = 3});
  window(c, 0, 50, 20);
  EXPECT_EQ(c.level(1.0), 1);
  for (int w = 1; w <= 5; ++w) {
    window(c, w, 50, 1);  // fast answers ...
    c.shed(w + 0.5);      // ... because some are refused
  }
  EXPECT_EQ(c.level(6.0), 1);
  c.shed(6.5, 3);  // only refusals, no answer: not calm either
  EXPECT_EQ(c.level(7.0), 1);
  for (int w = 7; w < 10; ++w) window(c, w, 50, 1);  // three calm windows without refusals
  EXPECT_EQ(c.level(10.0), 0);
}

// A batch whose oldest request queued past queue_down_at x SLO steps down at once, mid-window,
// once per window: the window's end then does not step again for the same overload.
TEST(SloController, ALongQueueStepsDownAtOnceOncePerWindow) {
  SloController c(SloOptions{.p99_ms = 20, .rungs = 3});
  EXPECT_EQ(c.level(0.1, 9), 0);   // 9 ms < 0.5 x 20 ms
  EXPECT_EQ(c.level(0.2, 11), 1);  // at once
  EXPECT_EQ(c.level(0.3, 30), 1);  // not twice in a window
  window(c, 0, 50, 30);            // the window missed: already stepped for it
  EXPECT_EQ(c.level(1.0), 1);
  EXPECT_EQ(c.level(1.1, 30), 2);  // a new window
  EXPECT_EQ(c.stats().steps_down, 2);
}

TEST(SloController, BadOptionsAreRefused) {
  using testing::expect_error;
  expect_error<ValueError>([] { SloController(SloOptions{.p99_ms = 0}); }, {"must be > 0"});
  expect_error<ValueError>([] { SloController(SloOptions{.p99_ms = 5, .rungs = 0}); }, {"at least one"});
  expect_error<ValueError>([] { SloController(SloOptions{.p99_ms = 5, .down_at = 0.3, .up_at = 0.4}); },
                           {"up_at (0.4) < down_at (0.3)"});
  expect_error<ValueError>([] { SloController(SloOptions{.p99_ms = 5, .window_s = 0}); }, {"window"});
}

}  // namespace
}  // namespace focus
