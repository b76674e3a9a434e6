// softmax / log_softmax: values against a plain double loop along the first, a middle and the
// last dim (small and large, serial and parallel), stability on logits near 1e4 and with -inf
// entries, fast exp against libm, gradients in F64, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/ops/softmax.hpp"
#include "focus/ops/view.hpp"
#include "ops/math_testing.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::fast_and_libm;
using focus::testing::gradcheck;
using focus::testing::max_rel_diff;
using focus::testing::rand_input;
using focus::testing::values;
using Inputs = std::vector<Tensor>;

namespace {

// softmax (or log_softmax) of x along dim d, by the definition, in double. x contiguous.
std::vector<double> naive_softmax(const Tensor& x, int64_t d, bool log) {
  const Shape& s = x.shape();
  int64_t O = 1, I = 1;
  for (int64_t k = 0; k < d; ++k) O *= s[k];
  for (int64_t k = d + 1; k < x.dim(); ++k) I *= s[k];
  const int64_t N = s[d];
  const auto v = values(x);
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      double m = -INFINITY, z = 0;
      for (int64_t n = 0; n < N; ++n) m = std::max(m, v[(o * N + n) * I + i]);
      for (int64_t n = 0; n < N; ++n) z += std::exp(v[(o * N + n) * I + i] - m);
      for (int64_t n = 0; n < N; ++n) {
        const double e = v[(o * N + n) * I + i] - m;
        out[(o * N + n) * I + i] = log ? e - std::log(z) : std::exp(e) / z;
      }
    }
  return out;
}

void expect_close(const Tensor& got, const std::vector<double>& want, double tol) {
  const auto g = values(got);
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], want[i], tol * std::max(1.0, std::abs(want[i]))) << "element " << i;
}

}  // namespace

TEST(Softmax, MatchesNaiveAlongEveryDim) {
  Rng rng(31);
  for (DType dt : {DType::F64, DType::F32}) {
    const double tol = dt == DType::F64 ? 1e-14 : 1e-6;
    for (const Shape& s : {Shape{2, 3, 5}, Shape{7, 300, 40}, Shape{1000, 70}}) {  // small, large
      const Tensor x = Tensor::randn(s, rng, dt, 3.0);
      for (int64_t d = 0; d < x.dim(); ++d) {
        expect_close(softmax(x, d), naive_softmax(x, d, false), tol);
        expect_close(log_softmax(x, d - x.dim()), naive_softmax(x, d, true), tol);  // negative dim
      }
    }
  }
}

TEST(Softmax, StridedInputAndOneDimTensor) {
  Rng rng(32);
  const Tensor base = Tensor::randn({6, 4}, rng, DType::F64);
  const Tensor xt = base.transpose(0, 1);  // (4, 6) view, not contiguous
  expect_close(softmax(xt, -1), naive_softmax(xt.contiguous(), 1, false), 1e-14);
  const Tensor v = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  expect_close(softmax(v, 0), {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z}, 1e-15);
}

TEST(Softmax, StableOnLargeLogits) {
  // Logits near 1e4 overflow a plain exp; max subtraction makes them the same as the offsets.
  // In F32 the offsets are exact multiples of 2^-10, representable next to 1e4.
  std::vector<float> big, off;
  for (int i = 0; i < 12; ++i) {
    off.push_back(static_cast<float>((i * 37 % 11) - 5) * 0.5f);
    big.push_back(1e4f + off.back());
  }
  for (bool log : {false, true}) {
    const Tensor a = Tensor::from_vector(big, {3, 4}), b = Tensor::from_vector(off, {3, 4});
    const Tensor ya = log ? log_softmax(a, 1) : softmax(a, 1);
    const Tensor yb = log ? log_softmax(b, 1) : softmax(b, 1);
    for (double e : values(ya)) EXPECT_TRUE(std::isfinite(e));
    EXPECT_LT(max_rel_diff(ya, yb), 1e-6) << (log ? "log_softmax" : "softmax");
    expect_close(ya, naive_softmax(b.to(DType::F64), 1, log), 1e-6);
  }
  // Strided path too (dim 0).
  const Tensor c = Tensor::from_vector(big, {4, 3});
  expect_close(softmax(c, 0),
               naive_softmax(Tensor::from_vector(off, {4, 3}).to(DType::F64), 0, false), 1e-6);
}

TEST(Softmax, MaskedEntries) {
  // -inf (a masked attention score) gets probability exactly 0 and leaves the rest intact.
  const float ninf = -INFINITY;
  const Tensor x = Tensor::from_vector(std::vector<float>{0.5f, ninf, 1.5f, ninf}, {1, 4});
  const auto y = values(softmax(x, 1));
  EXPECT_EQ(y[1], 0.0);
  EXPECT_EQ(y[3], 0.0);
  EXPECT_NEAR(y[0], 1 / (1 + std::exp(1.0)), 1e-7);
  EXPECT_NEAR(y[2], 1 / (1 + std::exp(-1.0)), 1e-7);
  EXPECT_EQ(values(log_softmax(x, 1))[1], -INFINITY);
}

TEST(Softmax, FastExpMatchesLibm) {
  Rng rng(33);
  const Tensor x = Tensor::randn({64, 4, 65, 65}, rng, DType::F32, 4.0);  // (B, H, L, L) scores
  for (int64_t d : {3, 1}) {
    const auto [fast, ref] = fast_and_libm([&] { return softmax(x, d); });
    EXPECT_LT(max_rel_diff(fast, ref), 5e-7) << "dim " << d;
    const auto [lfast, lref] = fast_and_libm([&] { return log_softmax(x, d); });
    EXPECT_LT(max_rel_diff(lfast, lref), 5e-7) << "dim " << d;
  }
}

TEST(Softmax, Gradients) {
  Rng rng(34);
  for (bool log : {false, true}) {
    auto f = [log](int64_t d) {
      return [log, d](const Inputs& in) { return log ? log_softmax(in[0], d) : softmax(in[0], d); };
    };
    EXPECT_TRUE(gradcheck(f(-1), {rand_input({3, 5}, rng, -2, 2)})) << log;
    EXPECT_TRUE(gradcheck(f(1), {rand_input({2, 4, 3}, rng, -2, 2)})) << log;  // middle dim
    EXPECT_TRUE(gradcheck(f(0), {rand_input({4, 2, 3}, rng, -2, 2)})) << log;  // first dim
    EXPECT_TRUE(gradcheck(
        [log](const Inputs& in) {
          const Tensor t = transpose(in[0], 0, 1);
          return log ? log_softmax(t, 1) : softmax(t, 1);
        },
        {rand_input({4, 3}, rng, -2, 2)}))
        << log;
  }
}

TEST(Softmax, Errors) {
  const Tensor x = Tensor::zeros({2, 3});
  expect_error<ShapeError>([&] { softmax(x, 2); }, "(2, 3)");
  expect_error<ShapeError>([&] { log_softmax(x, -3); }, "dim -3");
  expect_error<DTypeError>([&] { softmax(Tensor::zeros({2}, DType::I32), 0); }, "I32");
}
