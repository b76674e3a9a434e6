// Gradient clipping on known vectors and the learning-rate schedules at their key steps.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "focus/kernels/cpu.hpp"
#include "focus/optim/clip.hpp"
#include "focus/optim/schedule.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {
Tensor with_grad(const std::vector<float>& g) {
  Tensor p = Tensor::zeros({static_cast<int64_t>(g.size())}).requires_grad_();
  p.set_grad(Tensor::from_vector(g, {static_cast<int64_t>(g.size())}));
  return p;
}
}  // namespace

TEST(Clip, ScalesToMaxNorm) {
  // Global norm of (3, 4) and (12): sqrt(9 + 16 + 144) = 13.
  Tensor a = with_grad({3, 4}), b = with_grad({12});
  Tensor none = Tensor::zeros({2}).requires_grad_();  // no gradient: skipped
  const double norm = clip_grad_norm({a, b, none}, 6.5);
  EXPECT_DOUBLE_EQ(norm, 13.0);
  const double f = 6.5 / (13.0 + 1e-6);
  EXPECT_FLOAT_EQ(a.grad().to_vector<float>()[0], static_cast<float>(3 * f));
  EXPECT_FLOAT_EQ(a.grad().to_vector<float>()[1], static_cast<float>(4 * f));
  EXPECT_FLOAT_EQ(b.grad().to_vector<float>()[0], static_cast<float>(12 * f));
  EXPECT_NEAR(grad_norm({a, b}), 6.5, 1e-5);
  EXPECT_FALSE(none.grad().defined());
}

TEST(Clip, BelowMaxNormIsUntouched) {
  Tensor a = with_grad({3, 4});
  EXPECT_DOUBLE_EQ(clip_grad_norm({a}, 5.0 + 1e-3), 5.0);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(clip_grad_norm({Tensor::zeros({1}).requires_grad_()}, 1.0), 0.0);
  EXPECT_THROW(clip_grad_norm({a}, -1.0), ValueError);
}

TEST(Clip, LargeF64AndNonContiguousGradients) {
  // 100000 values of 0.5 (F64, threaded path) and a transposed F32 grad of ones (2 x 3).
  Tensor big = Tensor::zeros({100000}, DType::F64).requires_grad_();
  big.set_grad(Tensor::full({100000}, 0.5, DType::F64));
  Tensor small = Tensor::zeros({3, 2}).requires_grad_();
  small.set_grad(Tensor::ones({2, 3}).transpose(0, 1));
  const double want = std::sqrt(100000 * 0.25 + 6.0);
  const int saved = num_threads();
  set_num_threads(1);
  const double n1 = grad_norm({big, small});
  set_num_threads(2);
  EXPECT_EQ(grad_norm({big, small}), n1);  // fixed summation order
  set_num_threads(saved);
  EXPECT_NEAR(clip_grad_norm({big, small}, 1.0), want, 1e-9);
  EXPECT_NEAR(big.grad().to_vector<double>()[777], 0.5 / (want + 1e-6), 1e-12);
  EXPECT_NEAR(small.grad().to_vector<float>()[4], 1.0 / want, 1e-7);
  EXPECT_NEAR(grad_norm({big, small}), 1.0, 1e-6);
}

TEST(Schedule, Constant) {
  ConstantSchedule s(0.3);
  EXPECT_EQ(s.lr_at(0), 0.3);
  EXPECT_EQ(s.lr_at(1000000), 0.3);
  EXPECT_THROW(s.lr_at(-1), ValueError);
  EXPECT_THROW(ConstantSchedule(-0.1), ValueError);
}

TEST(Schedule, WarmupCosine) {
  const double lr = 1.0, floor = 0.1;
  WarmupCosineSchedule s(lr, 4, 14, floor);  // warmup steps 0..3, cosine over steps 4..14
  EXPECT_DOUBLE_EQ(s.lr_at(0), lr / 4);
  EXPECT_DOUBLE_EQ(s.lr_at(2), 3 * lr / 4);
  EXPECT_DOUBLE_EQ(s.lr_at(3), lr);       // warmup ends at the peak
  EXPECT_DOUBLE_EQ(s.lr_at(4), lr);       // cosine starts at the peak
  EXPECT_DOUBLE_EQ(s.lr_at(9), floor + (lr - floor) * 0.5);  // half way
  EXPECT_DOUBLE_EQ(s.lr_at(6), floor + (lr - floor) * 0.5 * (1 + std::cos(std::numbers::pi * 0.2)));
  EXPECT_NEAR(s.lr_at(14), floor, 1e-15);
  EXPECT_EQ(s.lr_at(100), floor);
  WarmupCosineSchedule no_warmup(2.0, 0, 10);
  EXPECT_EQ(no_warmup.lr_at(0), 2.0);
  EXPECT_NEAR(no_warmup.lr_at(10), 0.0, 1e-15);
  EXPECT_THROW(WarmupCosineSchedule(1.0, 10, 10), ValueError);
  EXPECT_THROW(WarmupCosineSchedule(1.0, 0, 10, 2.0), ValueError);
}

TEST(Schedule, StepDecay) {
  StepDecaySchedule s(0.1, 30, 0.5);
  EXPECT_EQ(s.lr_at(0), 0.1);
  EXPECT_EQ(s.lr_at(29), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(30), 0.05);
  EXPECT_DOUBLE_EQ(s.lr_at(89), 0.1 * 0.25);
  EXPECT_DOUBLE_EQ(s.lr_at(90), 0.1 * 0.125);
  EXPECT_THROW(StepDecaySchedule(0.1, 0, 0.5), ValueError);
}

TEST(Schedule, InverseSqrt) {
  // Noam: d_model^-0.5 * min(s^-0.5, s * warmup^-1.5), s = step + 1.
  const double d = 512, warm = 4000;
  const InverseSqrtSchedule s = InverseSqrtSchedule::noam(512, 4000);
  EXPECT_DOUBLE_EQ(s.lr_at(0), std::pow(d, -0.5) * std::pow(warm, -1.5));
  EXPECT_DOUBLE_EQ(s.lr_at(1999), std::pow(d, -0.5) * 2000 * std::pow(warm, -1.5));
  EXPECT_DOUBLE_EQ(s.lr_at(3999), std::pow(d, -0.5) * std::pow(warm, -0.5));  // the peak
  EXPECT_LT(s.lr_at(4000), s.lr_at(3999));
  EXPECT_DOUBLE_EQ(s.lr_at(15999), std::pow(d, -0.5) / std::sqrt(16000.0));
  const InverseSqrtSchedule scaled(2.0, 100);
  EXPECT_DOUBLE_EQ(scaled.lr_at(99), 2.0 / 10.0);
  EXPECT_THROW(InverseSqrtSchedule(1.0, 0), ValueError);
  EXPECT_THROW(InverseSqrtSchedule::noam(0, 10), ValueError);
}
