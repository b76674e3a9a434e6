// Learned and sinusoidal positional encodings (see positional.hpp).
#include "focus/nn/positional.hpp"

#include <cmath>

#include "focus/nn/init.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/view.hpp"

namespace focus {

namespace {

// x (B, L, D) + table (Lmax, D)[:L], checked.
Tensor add_positions(const Tensor& x, const Tensor& table, const char* who) {
  FOCUS_CHECK(x.dim() == 3 && x.size(2) == table.size(1) && x.size(1) <= table.size(0), ShapeError,
              "{}: input {} must be (B, L <= {}, {})", who, to_string(x.shape()), table.size(0),
              table.size(1));
  return add(x, slice(table, 0, 0, x.size(1)));
}

}  // namespace

LearnedPositionalEncoding::LearnedPositionalEncoding(int64_t max_len, int64_t dim, Rng& rng)
    : weight(register_parameter(
          "weight", init::normal({init::positive(max_len, "LearnedPositionalEncoding: max_len"),
                                  init::positive(dim, "LearnedPositionalEncoding: dim")},
                                 0.02, rng))) {}

Tensor LearnedPositionalEncoding::forward(const Tensor& x) const {
  return add_positions(x, weight, "LearnedPositionalEncoding");
}

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(int64_t max_len, int64_t dim) {
  pe64_ = Tensor::empty({init::positive(max_len, "SinusoidalPositionalEncoding: max_len"),
                         init::positive(dim, "SinusoidalPositionalEncoding: dim")},
                        DType::F64);  // (Lmax, D)
  double* p = pe64_.data<double>();
  for (int64_t pos = 0; pos < max_len; ++pos)
    for (int64_t i = 0; i < dim; ++i) {
      const double angle = pos / std::pow(10000.0, static_cast<double>(i - i % 2) / dim);
      p[pos * dim + i] = i % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  pe32_ = pe64_.to(DType::F32);
}

Tensor SinusoidalPositionalEncoding::table(DType dtype) const {
  return dtype == DType::F64 ? pe64_ : pe32_;
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x) const {
  return add_positions(x, table(x.dtype()), "SinusoidalPositionalEncoding");
}

}  // namespace focus
