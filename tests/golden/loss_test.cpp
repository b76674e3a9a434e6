// Golden test of cross_entropy against torch.nn.functional.cross_entropy (PyTorch 1.13): plain,
// and with label_smoothing=0.1 plus one row whose target is ignore_index (its gradient row must
// be zero and it must not count in the mean). Gradients of loss * R, R a fixed scalar.
#include <gtest/gtest.h>

#include "focus/ops/loss.hpp"
#include "golden/golden.hpp"

using namespace focus;
using golden::Fixture;

namespace {

void check_cross_entropy(const std::string& stem) {
  const Fixture fx(stem);
  Tensor logits = fx.input("logits");  // (N, C)
  const Tensor target = fx.at("target");  // (N) I64
  Tensor loss = cross_entropy(logits, target, fx.meta_double("label_smoothing"),
                              fx.meta_int("ignore_index"));  // ()
  EXPECT_TRUE(golden::matches(fx, "output", loss));
  loss.backward(fx.at("grad_output"));
  EXPECT_TRUE(golden::matches(fx, "grad.logits", logits.grad()));
}

}  // namespace

TEST(GoldenCrossEntropy, Plain) { check_cross_entropy("cross_entropy_f64"); }
TEST(GoldenCrossEntropy, SmoothedWithIgnoredRow) { check_cross_entropy("cross_entropy_smooth_f64"); }
TEST(GoldenCrossEntropy, SmoothedWithIgnoredRowF32) { check_cross_entropy("cross_entropy_smooth_f32"); }
