// The clock a training time budget (--time-limit-min) is counted on.
//   wall:     steady-clock seconds.
//   unstolen: wall seconds minus the time the hypervisor gave this machine's CPUs to other guests
//             (the `steal` column of /proc/stat, averaged over the CPUs). On a shared cloud host a
//             90-minute budget then means 90 minutes of the CPUs the machine was sold, whatever the
//             neighbours did (this project's machines have lost half their CPU to steal for tens of
//             minutes). Steal is machine-wide; this machine's own other processes still count.
// Where /proc/stat is unreadable or has no steal column, unstolen equals wall.
#pragma once
#include <chrono>
#include <string>

namespace focus {

enum class ClockKind { Wall, Unstolen };
ClockKind parse_clock_kind(const std::string& s);  // "wall" | "unstolen"; ValueError otherwise

// One consistent look at the clock: wall and steal read once, so budget <= wall always holds
// (two separate calls read two different instants). Steal is clamped to [0, wall]: /proc/stat
// counts in ticks, so a raw difference can exceed the wall time by up to one tick.
struct BudgetReading {
  double wall = 0;    // steady-clock seconds since construction
  double stolen = 0;  // steal per CPU since construction (0 when unknown), <= wall
  double budget = 0;  // seconds on the clock's kind: wall, or wall - stolen
};

class BudgetClock {
 public:
  explicit BudgetClock(ClockKind kind);
  BudgetReading read() const;
  // On this clock, since construction (the wall clock reads no /proc/stat).
  double seconds() const { return kind_ == ClockKind::Wall ? wall_seconds() : read().budget; }
  double wall_seconds() const;                       // since construction

 private:
  ClockKind kind_;
  std::chrono::steady_clock::time_point t0_;
  double steal0_;
};

// Machine-wide steal time so far, in seconds per CPU, from `stat` (/proc/stat's format; 0 when
// unreadable or without a steal column).
double steal_seconds_per_cpu(const std::string& stat = "/proc/stat");

}  // namespace focus
