// Shapes and strides: small vectors of int64 with the helpers every op needs
// (element count, contiguous strides, broadcasting, dim wrapping, printing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace focus {

using Shape = std::vector<int64_t>;

int64_t numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string to_string(const Shape& s);  // "(2, 3, 4)"
// NumPy broadcasting of two shapes; throws ShapeError naming both shapes and `what`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what = "broadcast");
// Wraps a possibly negative dim into [0, rank); throws ShapeError when out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* what = "dim");

}  // namespace focus
