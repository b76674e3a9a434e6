// Reductions: values against naive loops over every index (middle, non-adjacent, negative and
// all dims, keepdim, strided inputs), max tie-breaking, gradients in F64, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "focus/ops/elementwise.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"
#include "ops/math_testing.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::expect_error;
using focus::testing::gradcheck;
using focus::testing::rand_input;
using focus::testing::values;
using Inputs = std::vector<Tensor>;

namespace {

// Naive sum / mean / var of a (A, B, C) tensor over the dims flagged in `red`, in the keepdim
// layout (reduced coordinates 0): one pass for the sums, one for the squared deviations.
enum class Kind { Sum, Mean, Var };
std::vector<double> naive3(const Tensor& x, std::array<bool, 3> red, Kind kind, bool unbiased) {
  const Shape s = x.shape();
  const auto v = values(x);
  Shape o = s;
  for (int d = 0; d < 3; ++d)
    if (red[d]) o[d] = 1;
  const auto out_index = [&](int64_t i, int64_t j, int64_t k) {
    return ((red[0] ? 0 : i) * o[1] + (red[1] ? 0 : j)) * o[2] + (red[2] ? 0 : k);
  };
  const double n = double(numel(s)) / double(numel(o));
  std::vector<double> sums(numel(o), 0.0), ss(numel(o), 0.0);
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t k = 0; k < s[2]; ++k) sums[out_index(i, j, k)] += v[(i * s[1] + j) * s[2] + k];
  if (kind == Kind::Sum) return sums;
  for (double& m : sums) m /= n;
  if (kind == Kind::Mean) return sums;
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t k = 0; k < s[2]; ++k) {
        const double d = v[(i * s[1] + j) * s[2] + k] - sums[out_index(i, j, k)];
        ss[out_index(i, j, k)] += d * d;
      }
  for (double& e : ss) e /= n - (unbiased ? 1 : 0);
  return ss;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

}  // namespace

TEST(Reduce, SumMeanVarMatchNaiveOverEveryDimSet) {
  Rng rng(21);
  const Tensor x = Tensor::randn({3, 4, 5}, rng, DType::F64);  // (A, B, C)
  const std::vector<std::pair<std::vector<int64_t>, std::array<bool, 3>>> sets = {
      {{}, {true, true, true}},      {{0}, {true, false, false}},   {{1}, {false, true, false}},
      {{-1}, {false, false, true}},  {{0, 1}, {true, true, false}}, {{1, 2}, {false, true, true}},
      {{0, 2}, {true, false, true}},  // non-adjacent: the permuted path
      {{2, -3}, {true, false, true}}};
  for (const auto& [dims, red] : sets) {
    for (bool keep : {false, true}) {
      Shape want_shape;
      for (int d = 0; d < 3; ++d)
        if (!red[d] || keep) want_shape.push_back(red[d] ? 1 : x.shape()[d]);
      const Tensor s = sum(x, dims, keep), m = mean(x, dims, keep);
      const Tensor v1 = var(x, dims, true, keep), v0 = var(x, dims, false, keep);
      for (const Tensor* t : {&s, &m, &v1, &v0}) EXPECT_EQ(t->shape(), want_shape);
      expect_near(values(s), naive3(x, red, Kind::Sum, false), 1e-12);
      expect_near(values(m), naive3(x, red, Kind::Mean, false), 1e-12);
      expect_near(values(v1), naive3(x, red, Kind::Var, true), 1e-12);
      expect_near(values(v0), naive3(x, red, Kind::Var, false), 1e-12);
    }
  }
}

TEST(Reduce, StridedInputAndSizeOneDimsInsideTheBlock) {
  Rng rng(22);
  const Tensor base = Tensor::randn({5, 4, 3}, rng, DType::F64);
  const Tensor xt = base.permute({2, 1, 0});  // (3, 4, 5) strided view
  expect_near(values(sum(xt, {0, 2})),
              naive3(xt.contiguous(), {true, false, true}, Kind::Sum, false), 1e-12);
  // Dims {0, 2} of (3, 1, 5): the kept dim between them has size 1, still one block.
  const Tensor y = Tensor::randn({3, 1, 5}, rng, DType::F64);
  expect_near(values(mean(y, {0, 2})), naive3(y, {true, false, true}, Kind::Mean, false), 1e-12);
}

TEST(Reduce, LargeF32SumsAreAccurateAndParallel) {
  // 2^20 values of 0.1f: a float accumulator would drift by ~1e-3 relative; double does not.
  const Tensor x = Tensor::full({1024, 1024}, 0.1, DType::F32);
  const double want = 1024.0 * 1024.0 * double(0.1f);
  EXPECT_NEAR(sum(x).item(), want, 1e-6 * want);
  EXPECT_NEAR(mean(x, {0}).to_vector<double>()[7], double(0.1f), 1e-7);  // inner (strided) path
  EXPECT_NEAR(var(x, {1}).to_vector<double>()[3], 0.0, 1e-12);
  Rng rng(23);
  const Tensor r = Tensor::randn({64, 300, 40}, rng, DType::F32);  // (64, 300, 40)
  expect_near(values(sum(r, {1})), naive3(r, {false, true, false}, Kind::Sum, false), 1e-4);
  expect_near(values(var(r, {-1})), naive3(r, {false, false, true}, Kind::Var, true), 1e-5);
}

TEST(Reduce, MaxAndArgmax) {
  // Ties: the first maximal element wins, for the value's gradient and for argmax.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 9, 3, 8,   // row 0
                                                     4, 2, 7, 8,   // row 1
                                                     6, 0, 7, 7},  // row 2 (tie at 2, 3)
                                 {3, 4});
  x.requires_grad_(true);
  const Tensor m = max(x, 1);
  EXPECT_EQ(values(m), (std::vector<double>{9, 8, 7}));
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(argmax(x, 1).dtype(), DType::I64);
  EXPECT_EQ(argmax(x, 0, true).shape(), (Shape{1, 4}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 1, 0}));
  m.backward(Tensor::from_vector(std::vector<double>{10, 20, 30}, {3}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 10, 0, 0, 0, 0, 0, 20, 0, 0, 30, 0}));
  // Along a middle dim, keepdim, and a NaN counts as the maximum (as torch).
  Rng rng(24);
  const Tensor y = Tensor::randn({3, 4, 5}, rng, DType::F64);
  const auto yv = values(y), my = values(max(y, -2, true));
  EXPECT_EQ(max(y, -2, true).shape(), (Shape{3, 1, 5}));
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t c = 0; c < 5; ++c) {
      double best = -INFINITY;
      for (int64_t b = 0; b < 4; ++b) best = std::max(best, yv[(a * 4 + b) * 5 + c]);
      EXPECT_EQ(my[a * 5 + c], best);
    }
  const Tensor n = Tensor::from_vector(std::vector<float>{1, NAN, 7, NAN}, {4});
  EXPECT_EQ(argmax(n, 0).item(), 1.0);
  EXPECT_TRUE(std::isnan(max(n, 0).item()));
}

TEST(Reduce, Gradients) {
  Rng rng(25);
  const auto check = [&](auto f, const Shape& s) {
    EXPECT_TRUE(gradcheck([&](const Inputs& in) { return f(in[0]); }, {rand_input(s, rng)}));
  };
  check([](const Tensor& a) { return sum(a); }, {3, 4});
  check([](const Tensor& a) { return sum(a, {1}); }, {2, 3, 4});
  check([](const Tensor& a) { return sum(a, {0, 2}, true); }, {2, 3, 4});
  check([](const Tensor& a) { return mean(a, {1, 2}, true); }, {2, 3, 4});
  check([](const Tensor& a) { return mean(a, {-1}); }, {2, 3, 4});
  check([](const Tensor& a) { return var(a, {1}); }, {2, 3, 4});
  check([](const Tensor& a) { return var(a, {0, 2}, false, true); }, {2, 3, 4});
  check([](const Tensor& a) { return var(a, {}, true); }, {3, 4});
  check([](const Tensor& a) { return mean(transpose(a, 0, 2), {1}); }, {2, 3, 4});
  // max: continuous random inputs have no ties, so the max is differentiable at the test point.
  check([](const Tensor& a) { return max(a, 1); }, {3, 4, 5});
  check([](const Tensor& a) { return max(a, 0, true); }, {3, 4});
  check([](const Tensor& a) { return max(a, -1); }, {2, 3, 4});
}

TEST(Reduce, ScalarAndEmptyEdges) {
  const Tensor s = Tensor::scalar(2.5, DType::F64);
  EXPECT_EQ(sum(s).shape(), Shape{});
  EXPECT_EQ(sum(s).item(), 2.5);
  EXPECT_EQ(mean(Tensor::ones({2, 3}, DType::F64), {0}, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(sum(Tensor::zeros({0, 3}, DType::F64), {0}).to_vector<double>(),
            (std::vector<double>{0, 0, 0}));
}

TEST(Reduce, Errors) {
  const Tensor x = Tensor::zeros({2, 3});
  expect_error<ShapeError>([&] { sum(x, {2}); }, "(2, 3)");
  expect_error<ShapeError>([&] { mean(x, {-3}); }, "dim -3");
  expect_error<ShapeError>([&] { var(x, {1, -1}); }, "repeated");
  expect_error<ShapeError>([&] { max(x, 5); }, "(2, 3)");
  expect_error<ValueError>([&] { max(Tensor::zeros({2, 0}), 1); }, "(2, 0)");
  expect_error<DTypeError>([&] { sum(Tensor::zeros({2}, DType::I64)); }, "I64");
}
