// Learning-rate schedules: lr_at(step) for the 0-based index of the optimizer step about to be
// taken (the trainer calls opt.set_lr(schedule.lr_at(opt.steps())) before each step()).
//   Constant:     lr
//   WarmupCosine: lr * (step + 1) / warmup for step < warmup, then cosine from lr down to min_lr
//                 at step == total_steps, min_lr after.
//   StepDecay:    lr * gamma ^ floor(step / step_size)      (torch.optim.lr_scheduler.StepLR)
//   InverseSqrt:  scale * min(s^-0.5, s * warmup^-1.5), s = step + 1 ("Attention is all you
//                 need": scale = d_model^-0.5 * factor, see InverseSqrtSchedule::noam); rises
//                 linearly to its peak scale / sqrt(warmup) at s == warmup, then decays as 1/sqrt(s).
// Constructors throw ValueError for negative rates or inconsistent step counts; lr_at throws
// ValueError for a negative step.
#pragma once
#include <cstdint>

namespace focus {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr_at(int64_t step) const = 0;
};

class ConstantSchedule : public LrSchedule {
 public:
  explicit ConstantSchedule(double lr);
  double lr_at(int64_t step) const override;

 private:
  double lr_;
};

class WarmupCosineSchedule : public LrSchedule {
 public:
  // warmup_steps >= 0, total_steps > warmup_steps, 0 <= min_lr <= lr.
  WarmupCosineSchedule(double lr, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);
  double lr_at(int64_t step) const override;

 private:
  double lr_, min_lr_;
  int64_t warmup_, total_;
};

class StepDecaySchedule : public LrSchedule {
 public:
  // step_size >= 1, gamma >= 0.
  StepDecaySchedule(double lr, int64_t step_size, double gamma);
  double lr_at(int64_t step) const override;

 private:
  double lr_, gamma_;
  int64_t step_size_;
};

class InverseSqrtSchedule : public LrSchedule {
 public:
  // scale >= 0, warmup_steps >= 1.
  InverseSqrtSchedule(double scale, int64_t warmup_steps);
  // The Transformer's schedule: scale = factor / sqrt(d_model).
  static InverseSqrtSchedule noam(int64_t d_model, int64_t warmup_steps, double factor = 1.0);
  double lr_at(int64_t step) const override;

 private:
  double scale_;
  int64_t warmup_;
};

}  // namespace focus
