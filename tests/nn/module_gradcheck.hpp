// Gradient check of a module: its parameters are converted to F64 and appended to the inputs, so
// gradcheck perturbs them in place (they share storage with the module) and checks their
// gradients along with the inputs'. f receives the inputs first, then the parameters.
#pragma once
#include "focus/nn/module.hpp"
#include "support/gradcheck.hpp"

namespace focus::testing {

inline ::testing::AssertionResult module_gradcheck(Module& m, const Fn& f,
                                                   std::vector<Tensor> inputs,
                                                   const GradcheckOptions& opt = {}) {
  m.to(DType::F64);
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  return gradcheck(f, inputs, opt);
}

}  // namespace focus::testing
