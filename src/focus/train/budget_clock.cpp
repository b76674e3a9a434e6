// Budget clocks (see budget_clock.hpp).
#include "focus/train/budget_clock.hpp"

#include <unistd.h>

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

double BudgetClock::stolen_seconds() const {
  const double s = steal_seconds_per_cpu() - steal0_;
  return s > 0 ? s : 0.0;
}

double BudgetClock::seconds() const {
  const double wall = wall_seconds();
  if (kind_ == ClockKind::Wall) return wall;
  const double s = wall - stolen_seconds();
  return s > 0 ? s : 0.0;
}

}  // namespace focus
