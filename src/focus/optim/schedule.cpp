// Learning-rate schedules (see schedule.hpp).
#include "focus/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

void check_rate(double v, const char* who, const char* what) {
  FOCUS_CHECK(std::isfinite(v) && v >= 0.0, ValueError, "{}: invalid {} {}", who, what, v);
}
void check_step(int64_t step, const char* who) {
  FOCUS_CHECK(step >= 0, ValueError, "{}: negative step {}", who, step);
}

}  // namespace

ConstantSchedule::ConstantSchedule(double lr) : lr_(lr) { check_rate(lr, "ConstantSchedule", "lr"); }

double ConstantSchedule::lr_at(int64_t step) const {
  check_step(step, "ConstantSchedule");
  return lr_;
}

WarmupCosineSchedule::WarmupCosineSchedule(double lr, int64_t warmup, int64_t total, double min_lr)
    : lr_(lr), min_lr_(min_lr), warmup_(warmup), total_(total) {
  check_rate(lr, "WarmupCosineSchedule", "lr");
  check_rate(min_lr, "WarmupCosineSchedule", "min_lr");
  FOCUS_CHECK(min_lr <= lr, ValueError, "WarmupCosineSchedule: min_lr {} > lr {}", min_lr, lr);
  FOCUS_CHECK(warmup >= 0 && total > warmup, ValueError,
              "WarmupCosineSchedule: need 0 <= warmup_steps < total_steps, got {} and {}", warmup,
              total);
}

double WarmupCosineSchedule::lr_at(int64_t step) const {
  check_step(step, "WarmupCosineSchedule");
  if (step < warmup_) return lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  if (step >= total_) return min_lr_;
  const double progress =
      static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
  return min_lr_ + (lr_ - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

StepDecaySchedule::StepDecaySchedule(double lr, int64_t step_size, double gamma)
    : lr_(lr), gamma_(gamma), step_size_(step_size) {
  check_rate(lr, "StepDecaySchedule", "lr");
  check_rate(gamma, "StepDecaySchedule", "gamma");
  FOCUS_CHECK(step_size >= 1, ValueError, "StepDecaySchedule: step_size {} < 1", step_size);
}

double StepDecaySchedule::lr_at(int64_t step) const {
  check_step(step, "StepDecaySchedule");
  return lr_ * std::pow(gamma_, static_cast<double>(step / step_size_));
}

InverseSqrtSchedule::InverseSqrtSchedule(double scale, int64_t warmup)
    : scale_(scale), warmup_(warmup) {
  check_rate(scale, "InverseSqrtSchedule", "scale");
  FOCUS_CHECK(warmup >= 1, ValueError, "InverseSqrtSchedule: warmup_steps {} < 1", warmup);
}

InverseSqrtSchedule InverseSqrtSchedule::noam(int64_t d_model, int64_t warmup, double factor) {
  FOCUS_CHECK(d_model >= 1, ValueError, "InverseSqrtSchedule::noam: d_model {} < 1", d_model);
  return InverseSqrtSchedule(factor / std::sqrt(static_cast<double>(d_model)), warmup);
}

double InverseSqrtSchedule::lr_at(int64_t step) const {
  check_step(step, "InverseSqrtSchedule");
  const double s = static_cast<double>(step + 1);
  return scale_ * std::min(1.0 / std::sqrt(s), s * std::pow(static_cast<double>(warmup_), -1.5));
}

}  // namespace focus
