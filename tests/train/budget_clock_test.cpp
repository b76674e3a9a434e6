// Budget clocks: steal is read from /proc/stat's first line (fields after "cpu": user nice system
// idle iowait irq softirq steal), per CPU; a file without it reads as 0; unstolen <= wall; the
// config accepts wall | unstolen only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "../data/temp_dir.hpp"
#include "focus/tensor/error.hpp"
#include "focus/train/budget_clock.hpp"
#include "focus/train/config.hpp"

using namespace focus;

TEST(BudgetClock, ReadsStealPerCpuFromProcStat) {
  focus::testing::TempDir dir;
  const std::string good = dir.file("stat"), bad = dir.file("bad"), none = dir.file("none");
  std::ofstream(good) << "cpu  100 0 50 1000 7 0 3 400 0 0\ncpu0 50 0 25 500 3 0 1 200 0 0\n";
  std::ofstream(bad) << "intr 12345\n";
  std::ofstream(none) << "cpu  100 0 50 1000\n";  // an old kernel: no steal column
  const double hz = double(sysconf(_SC_CLK_TCK)), cpus = double(sysconf(_SC_NPROCESSORS_ONLN));
  EXPECT_DOUBLE_EQ(steal_seconds_per_cpu(good), 400.0 / hz / cpus);
  EXPECT_EQ(steal_seconds_per_cpu(bad), 0.0);
  EXPECT_EQ(steal_seconds_per_cpu(none), 0.0);
  EXPECT_EQ(steal_seconds_per_cpu(dir.file("missing")), 0.0);
  EXPECT_GE(steal_seconds_per_cpu(), 0.0);  // the real one
}

TEST(BudgetClock, UnstolenNeverRunsAheadOfWall) {
  const BudgetClock wall(ClockKind::Wall), unstolen(ClockKind::Unstolen);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_GE(wall.seconds(), 0.03);
  for (int i = 0; i < 1000; ++i) {  // one reading is self-consistent, however the calls interleave
    const BudgetReading w = wall.read(), u = unstolen.read();
    ASSERT_EQ(w.budget, w.wall);
    ASSERT_LE(u.budget, u.wall);
    ASSERT_GE(u.stolen, 0.0);
    ASSERT_LE(u.stolen, u.wall);
    ASSERT_DOUBLE_EQ(u.budget, u.wall - u.stolen);
  }
  EXPECT_EQ(parse_clock_kind("wall"), ClockKind::Wall);
  EXPECT_EQ(parse_clock_kind("unstolen"), ClockKind::Unstolen);
  EXPECT_THROW(parse_clock_kind("cpu"), ValueError);
  TrainConfig c;
  c.time_clock = "cpu";
  EXPECT_THROW(validate(c), ValueError);
}
