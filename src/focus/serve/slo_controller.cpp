// The latency-SLO controller (see slo_controller.hpp).
#include "focus/serve/slo_controller.hpp"

#include <algorithm>
#include <cmath>

#include "focus/tensor/error.hpp"

namespace focus {

SloController::SloController(const SloOptions& opt) : opt_(opt) {
  FOCUS_CHECK(std::isfinite(opt.p99_ms) && opt.p99_ms > 0, ValueError, "SLO p99 {} ms must be > 0", opt.p99_ms);
  FOCUS_CHECK(opt.rungs >= 1, ValueError, "SLO ladder needs at least one variant, got {}", opt.rungs);
  FOCUS_CHECK(opt.window_s > 0, ValueError, "SLO window {} s must be > 0", opt.window_s);
  FOCUS_CHECK(opt.up_at > 0 && opt.up_at < opt.down_at && opt.down_at <= 1, ValueError,
              "SLO thresholds: need 0 < up_at ({}) < down_at ({}) <= 1", opt.up_at, opt.down_at);
  FOCUS_CHECK(opt.queue_down_at > 0, ValueError, "SLO queue_down_at {} must be > 0", opt.queue_down_at);
  FOCUS_CHECK(opt.up_windows >= 1 && opt.min_samples >= 1, ValueError,
              "SLO: up_windows ({}) and min_samples ({}) must be >= 1", opt.up_windows, opt.min_samples);
}

void SloController::observe(double now_s, double latency_ms) {
  level(now_s);  // a request of a new window belongs to it
  latencies_.push_back(latency_ms);
}

void SloController::shed(double now_s, int64_t n) {
  level(now_s);
  sheds_ += std::max<int64_t>(0, n);
}

void SloController::calm_window() {
  if (++calm_ >= opt_.up_windows && level_ > 0) --level_, calm_ = 0, ++stats_.steps_up;
}

void SloController::close_window() {
  const double slo = opt_.p99_ms;
  const bool shed = sheds_ > 0;
  sheds_ = 0;
  if (latencies_.empty()) {  // no answer: calm unless everything was refused
    if (shed) calm_ = 0;
    else calm_window();
    return;
  }
  std::sort(latencies_.begin(), latencies_.end());
  const size_t n = latencies_.size();
  const double p99 = latencies_[std::min(n - 1, size_t(std::ceil(0.99 * double(n))) - 1)];
  latencies_.clear();
  ++stats_.windows;
  stats_.windows_met += p99 <= slo;
  stats_.last_p99_ms = p99;
  if (p99 > opt_.down_at * slo && int(n) >= opt_.min_samples) {
    calm_ = 0;
    if (level_ + 1 < opt_.rungs && !stepped_in_window_) ++level_, ++stats_.steps_down;
  } else if (p99 < opt_.up_at * slo && !shed) {
    calm_window();
  } else {
    calm_ = 0;
  }
}

int SloController::level(double now_s, double head_wait_ms) {
  if (window_start_ < 0) window_start_ = std::floor(now_s / opt_.window_s) * opt_.window_s;  // aligned windows
  while (now_s >= window_start_ + opt_.window_s) {
    close_window();
    stepped_in_window_ = false;
    window_start_ += opt_.window_s;
    if (latencies_.empty() && sheds_ == 0 && now_s >= window_start_ + 64 * opt_.window_s) {
      // A long idle gap: every window in it was calm; skip ahead without a loop per window.
      const double skipped = std::floor((now_s - window_start_) / opt_.window_s);
      for (int64_t k = 0; k < int64_t(skipped) && level_ > 0; ++k) calm_window();  // at most rungs x up_windows
      window_start_ += skipped * opt_.window_s;
    }
  }
  if (head_wait_ms > opt_.queue_down_at * opt_.p99_ms && !stepped_in_window_ && level_ + 1 < opt_.rungs) {
    ++level_, ++stats_.steps_down, calm_ = 0;
    stepped_in_window_ = true;
  }
  return level_;
}

int64_t slo_batch_cap(double slo_ms, double share, double ms_per_item, int64_t max_batch) {
  if (!(ms_per_item > 0) || !(slo_ms > 0) || !(share > 0)) return max_batch;
  const double fit = std::floor(share * slo_ms / ms_per_item);
  return fit >= double(max_batch) ? max_batch : std::max<int64_t>(1, int64_t(fit));
}

double slo_estimated_latency_ms(double spent_ms, double in_progress_left_ms, int64_t items_ahead,
                                int64_t items, double ms_per_item) {
  return std::max(0.0, spent_ms) + std::max(0.0, in_progress_left_ms) +
         double(std::max<int64_t>(0, items_ahead) + std::max<int64_t>(0, items)) * std::max(0.0, ms_per_item);
}

}  // namespace focus
