// Finite-difference gradient check in double precision, shared by every layer's tests.
// f maps F64 inputs to any output y; we check d<r, y>/dx_i for a fixed random r against
// central differences (x_i +- eps), for every element of every input that requires grad.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "focus/tensor/rng.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus::testing {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-5;
  uint64_t seed = 1234;
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs must be F64; those with requires_grad() are checked.
::testing::AssertionResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs,
                                     const GradcheckOptions& opt = {});

// A random F64 leaf requiring grad.
Tensor rand_input(const Shape& shape, Rng& rng, double lo = -1.0, double hi = 1.0,
                  bool requires_grad = true);

// max |a - b| / max |b| for two tensors of the same shape (max |a - b| when b is all zeros): a
// tensor of small values is held to its own scale, not to an absolute bound. NaN in either
// gives NaN, which fails every EXPECT_LT.
double max_rel_diff(const Tensor& a, const Tensor& b);
// max |a - b| over matching elements (any dtype, any strides; NaN if any difference is NaN); a
// gtest failure if the shapes differ.
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace focus::testing
