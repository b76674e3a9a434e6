// Tests of the golden-test machinery itself: a missing fixture fails (never skips), the error
// measure catches a wrong value, a NaN and a shape mismatch, and the fixture files carry what
// the other golden tests rely on (dtype metadata, grad_output, zero_gradients names).
#include <gtest/gtest.h>

#include <cmath>

#include "golden/golden.hpp"

using namespace focus;
using golden::Fixture;

TEST(GoldenFixture, MissingFileThrows) {
  EXPECT_THROW(Fixture("no_such_fixture_f64"), IOError);
}

TEST(GoldenFixture, ComparisonCatchesErrors) {
  const Fixture fx("layer_norm_f64");
  Tensor out = fx.at("output");  // (B, L, C)
  EXPECT_TRUE(golden::matches(fx, "output", out));
  out.data<double>()[3] += 1e-8 * golden::diff(out, out).scale;  // 1e-8 relative: above 1e-10
  EXPECT_FALSE(golden::matches(fx, "output", out));
  out.data<double>()[3] = NAN;
  EXPECT_FALSE(golden::matches(fx, "output", out));
  EXPECT_FALSE(golden::matches(fx, "output", fx.at("output").to(DType::F32)));
  EXPECT_FALSE(golden::matches(fx, "output", fx.at("output").reshape({-1})));
  EXPECT_FALSE(golden::matches(fx, "output", Tensor()));
}

TEST(GoldenFixture, MetadataAndZeroGradients) {
  const Fixture fx("mha_self_f64");
  EXPECT_EQ(fx.dtype(), DType::F64);
  EXPECT_EQ(fx.tol(), 1e-10);
  EXPECT_EQ(fx.at("grad_output").shape(), fx.at("output").shape());
  const auto zero = fx.zero_gradients();
  ASSERT_EQ(zero.size(), 1u);
  EXPECT_EQ(*zero.begin(), "grad.k_proj.bias");
  EXPECT_TRUE(fx.has(*zero.begin()));
  EXPECT_EQ(Fixture("mha_self_f32").tol(), 1e-4);
}
