// Shape helpers (see shape.hpp).
#include "focus/tensor/shape.hpp"

#include "focus/tensor/error.hpp"

namespace focus {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::string to_string(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  if (s.size() == 1) out += ",";
  return out + ")";
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    FOCUS_CHECK(da == db || da == 1 || db == 1, ShapeError,
                "{}: shapes {} and {} do not broadcast", what, to_string(a), to_string(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* what) {
  const int64_t r = rank == 0 ? 1 : rank;
  FOCUS_CHECK(dim >= -r && dim < r, ShapeError, "{}: dim {} out of range for rank {}", what, dim,
              rank);
  return dim < 0 ? dim + r : dim;
}

}  // namespace focus
