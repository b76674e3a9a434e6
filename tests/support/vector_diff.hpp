// max |a - b| / max |b| over two vectors of the same length (max |a - b| when b is all zeros): the
// kernels' tests hold raw buffers to their own scale. NaN in either gives NaN, which fails every
// EXPECT_LT. (tests/support/gradcheck.hpp has the same for tensors.)
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

namespace focus::testing {

template <class T>
double max_rel_diff(const std::vector<T>& a, const std::vector<T>& b) {
  double m = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    if (!(d <= m)) m = d;  // NaN propagates
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return scale > 0 ? m / scale : m;
}

}  // namespace focus::testing
