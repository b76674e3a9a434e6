// Helpers shared by the math-op tests (unary, reduce, softmax, norm, loss): typed-error checks
// that also look at the message, and inputs kept away from kinks.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "focus/kernels/unary.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus::testing {

// Expects f() to throw E with `needle` in its message.
template <class E, class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an exception mentioning \"" << needle << "\"";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// An F64 leaf requiring grad with |x| in [lo, hi] and random signs: away from the kinks of
// relu / abs at 0, where a central difference straddling the kink is meaningless.
inline Tensor away_from_zero(const Shape& shape, Rng& rng, double lo = 0.2, double hi = 1.0) {
  std::vector<double> v(numel(shape));
  for (double& x : v) x = (rng.uniform() < 0.5 ? -1 : 1) * (lo + (hi - lo) * rng.uniform());
  Tensor t = Tensor::from_vector(v, shape);
  t.requires_grad_(true);
  return t;
}

// Forces a math kernel (fast vexp or libm) for a scope.
struct MathKernelScope {
  explicit MathKernelScope(MathKernel k) : prev(math_kernel()) { set_math_kernel(k); }
  ~MathKernelScope() { set_math_kernel(prev); }
  MathKernel prev;
};

// Runs f once with the fast kernels and once with libm; returns both results.
template <class F>
std::pair<Tensor, Tensor> fast_and_libm(F&& f) {
  Tensor fast, ref;
  {
    MathKernelScope s(MathKernel::Fast);
    fast = f();
  }
  {
    MathKernelScope s(MathKernel::Libm);
    ref = f();
  }
  return {fast, ref};
}

inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace focus::testing
