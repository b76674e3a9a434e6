// Finite-difference gradient check (see gradcheck.hpp).
#include "support/gradcheck.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "focus/autograd/node.hpp"

namespace focus::testing {

static double dot(const Tensor& y, const Tensor& r) {
  const auto a = y.to_vector<double>();
  const auto b = r.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

::testing::AssertionResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs,
                                     const GradcheckOptions& opt) {
  for (const Tensor& t : inputs)
    if (t.defined() && t.dtype() != DType::F64 && t.requires_grad())
      return ::testing::AssertionFailure() << "gradcheck needs F64 inputs, got " << describe(t);
  std::vector<Tensor> xs = inputs;
  for (Tensor& x : xs)
    if (x.defined()) x.zero_grad();
  Tensor y = f(xs);
  Rng rng(opt.seed);
  const Tensor r = Tensor::randn(y.shape(), rng, DType::F64);
  y.backward(r);

  for (size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined() || !xs[i].requires_grad()) continue;
    const Tensor g = xs[i].grad();
    if (!g.defined()) return ::testing::AssertionFailure() << "input " << i << " got no gradient";
    if (g.shape() != xs[i].shape())
      return ::testing::AssertionFailure() << "input " << i << " gradient shape "
                                           << to_string(g.shape()) << " != " << to_string(xs[i].shape());
    const auto analytic = g.to_vector<double>();
    Tensor x = xs[i];
    double* p = x.data<double>();  // leaves are contiguous
    for (int64_t k = 0; k < x.numel(); ++k) {
      const double saved = p[k];
      double fp, fm;
      {
        NoGradGuard ng;
        p[k] = saved + opt.eps;
        fp = dot(f(xs), r);
        p[k] = saved - opt.eps;
        fm = dot(f(xs), r);
      }
      p[k] = saved;
      const double numeric = (fp - fm) / (2 * opt.eps);
      const double err = std::abs(numeric - analytic[k]);
      if (err > opt.atol + opt.rtol * std::abs(numeric))
        return ::testing::AssertionFailure()
               << "input " << i << " " << to_string(x.shape()) << " element " << k
               << ": analytic " << analytic[k] << " vs numeric " << numeric << " (err " << err << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

Tensor rand_input(const Shape& shape, Rng& rng, double lo, double hi, bool requires_grad) {
  Tensor t = Tensor::rand(shape, rng, DType::F64, lo, hi);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>();
  const auto y = b.to_vector<double>();
  if (x.size() != y.size()) return INFINITY;
  double m = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::abs(x[i] - y[i]);
    if (!(d <= m)) m = d;  // a NaN anywhere makes the result NaN, which no bound accepts
    scale = std::max(scale, std::abs(y[i]));
  }
  return scale > 0 ? m / scale : m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto x = a.contiguous().to_vector<double>(), y = b.contiguous().to_vector<double>();
  double m = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::abs(x[i] - y[i]);
    if (!(d <= m)) m = d;  // NaN propagates (std::max would drop it)
  }
  return m;
}

}  // namespace focus::testing
