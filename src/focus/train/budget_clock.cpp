// Budget clocks (see budget_clock.hpp).
#include "focus/train/budget_clock.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "focus/tensor/error.hpp"

namespace focus {

ClockKind parse_clock_kind(const std::string& s) {
  if (s == "wall") return ClockKind::Wall;
  if (s == "unstolen") return ClockKind::Unstolen;
  throw ValueError("unknown time clock '" + s + "' (use wall or unstolen)");
}

double steal_seconds_per_cpu(const std::string& stat) {
  std::ifstream f(stat);
  std::string line;
  if (!f || !std::getline(f, line) || line.rfind("cpu ", 0) != 0) return 0.0;
  // cpu user nice system idle iowait irq softirq steal ...
  std::istringstream in(line.substr(4));
  unsigned long long v[8] = {};
  for (auto& x : v)
    if (!(in >> x)) return 0.0;
  const long hz = sysconf(_SC_CLK_TCK);
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (hz <= 0 || cpus <= 0) return 0.0;
  return double(v[7]) / double(hz) / double(cpus);
}

BudgetClock::BudgetClock(ClockKind kind)
    : kind_(kind), t0_(std::chrono::steady_clock::now()), steal0_(steal_seconds_per_cpu()) {}

double BudgetClock::wall_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

BudgetReading BudgetClock::read() const {
  BudgetReading r;
  r.wall = wall_seconds();
  r.stolen = std::clamp(steal_seconds_per_cpu() - steal0_, 0.0, r.wall);
  r.budget = kind_ == ClockKind::Wall ? r.wall : r.wall - r.stolen;
  return r;
}

}  // namespace focus
