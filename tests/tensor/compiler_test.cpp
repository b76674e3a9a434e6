// Guards against a GCC 12.2 miscompilation seen on this project's AVX-512 hosts with
// -march=native: the SLP vectoriser turned the constant {1, 1, 1, 0} into {1, 1, 1, 1}. The build
// disables SLP vectorisation (CMakeLists.txt); this test fails if that protection is lost.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "focus/tensor/shape.hpp"

namespace {
__attribute__((noinline)) std::vector<int64_t> make_i64() { return {1, 1, 1, 0}; }
__attribute__((noinline)) std::vector<double> make_f64() { return {1., 1., 1., 0.}; }
__attribute__((noinline)) std::vector<float> make_f32() { return {1, 1, 1, 1, 1, 1, 0, 0}; }
}  // namespace

TEST(Compiler, ConstantInitialisersSurvive) {
  const auto a = make_i64();
  EXPECT_EQ(a[3], 0);
  const auto b = make_f64();
  EXPECT_EQ(b[3], 0.0);
  const auto c = make_f32();
  EXPECT_EQ(c[6], 0.f);
  EXPECT_EQ(c[7], 0.f);
  EXPECT_EQ(focus::numel(focus::Shape{1, 1, 1, 0}), 0);
}
