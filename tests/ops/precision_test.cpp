// The autograd ops over the GEMM and convolution kernels at bf16 precision
// (kernels/precision.hpp): linear, batched matmul and conv2d, forward and every gradient, against
// the same ops in F64 on bf16-rounded copies of each product's inputs (x, w and the incoming
// gradient): the backward passes' GEMMs must round too, as PyTorch's autocast does. Bias
// gradients are sums, not products, and stay F32.
#include <gtest/gtest.h>

#include <vector>

#include "focus/kernels/precision.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/matmul.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"
#include "support/gradcheck.hpp"

using namespace focus;
using focus::testing::max_rel_diff;

namespace {

// An F32 leaf of N(0, 1) values.
Tensor leaf(const Shape& s, Rng& rng) {
  Tensor t = Tensor::randn(s, rng);
  t.requires_grad_(true);
  return t;
}

// The F64 leaf holding t's values rounded to bf16.
Tensor rounded64(const Tensor& t) {
  std::vector<float> v = t.to_vector<float>();
  round_to_bf16(v.data(), v.data(), static_cast<int64_t>(v.size()));
  Tensor r = Tensor::from_vector(std::vector<double>(v.begin(), v.end()), t.shape());
  r.requires_grad_(true);
  return r;
}

Tensor plain64(const Tensor& t) { return t.detach().to(DType::F64); }

// Runs f on the F32 leaves at bf16 precision with upstream gradient g, and on their rounded F64
// copies with g rounded; checks the output and the gradients of the leaves listed in `rounded`
// (products) to 2e-5 relative, the others (biases: sums, never rounded) against F64 on the
// unrounded g to `bias_tol` (oneDNN's bf16 convolution sums the bias gradient from the bf16 copy of
// g it made for the products: bf16's rounding, 2^-9 relative per term, apart).
template <class F>
void check(const char* what, F f, std::vector<Tensor> leaves, const std::vector<bool>& product,
           double bias_tol, Rng& rng) {
  Tensor y, yf;
  {
    ScopedPrecision p(Precision::Bf16);
    y = f(leaves);
  }
  const Tensor g = Tensor::randn(y.shape(), rng);
  {
    ScopedPrecision p(Precision::Bf16);
    y.backward(g);
  }
  std::vector<Tensor> r64;
  for (size_t i = 0; i < leaves.size(); ++i) {
    Tensor c = product[i] ? rounded64(leaves[i]) : plain64(leaves[i]);
    c.requires_grad_(true);
    r64.push_back(c);
  }
  const Tensor y64 = f(r64);
  y64.backward(rounded64(g).detach());
  EXPECT_LT(max_rel_diff(y, y64), 2e-5) << what << ": forward";
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (product[i]) {
      EXPECT_LT(max_rel_diff(leaves[i].grad(), r64[i].grad()), 2e-5) << what << ": gradient " << i;
    } else {
      std::vector<Tensor> u64;
      for (const Tensor& t : leaves) {
        Tensor c = plain64(t);
        c.requires_grad_(true);
        u64.push_back(c);
      }
      f(u64).backward(plain64(g));
      EXPECT_LT(max_rel_diff(leaves[i].grad(), u64[i].grad()), bias_tol) << what << ": gradient " << i;
    }
  }
  // And the F32 result differs: bf16 was applied.
  for (Tensor& t : leaves) t.zero_grad();
  yf = f(leaves);
  EXPECT_GT(max_rel_diff(yf, y), 1e-4) << what << ": the bf16 forward equals the F32 one";
}

}  // namespace

TEST(PrecisionOps, LinearAtBf16) {
  Rng rng(21);
  // Big enough for oneDNN's matmul on bf16 hardware (the emulation elsewhere).
  check("linear", [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); },
        {leaf({4, 40, 96}, rng), leaf({72, 96}, rng), leaf({72}, rng)}, {true, true, false}, 1e-5, rng);
  check("linear, few rows", [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); },
        {leaf({3, 33}, rng), leaf({20, 33}, rng), leaf({20}, rng)}, {true, true, false}, 1e-5, rng);
}

TEST(PrecisionOps, BatchedMatmulAtBf16) {
  Rng rng(22);
  check("matmul, transposed operand",
        [](const std::vector<Tensor>& t) { return matmul(t[0], transpose(t[1], 1, 2)); },
        {leaf({3, 64, 48}, rng), leaf({3, 80, 48}, rng)}, {true, true}, 0, rng);
}

TEST(PrecisionOps, Conv2dAtBf16) {
  Rng rng(23);
  check("conv2d 3x3", [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 1, 1); },
        {leaf({4, 16, 10, 10}, rng), leaf({24, 16, 3, 3}, rng), leaf({24}, rng)}, {true, true, false}, 1e-2, rng);
  check("conv2d strided", [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 2, 1); },
        {leaf({3, 5, 11, 9}, rng), leaf({7, 5, 3, 3}, rng), leaf({7}, rng)}, {true, true, false}, 1e-2, rng);
}
