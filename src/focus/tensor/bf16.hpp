// bfloat16: the top 16 bits of an IEEE float (8 exponent bits, 7 stored mantissa bits), the
// storage type of DType::BF16. Conversion from float rounds to nearest, ties to even (as
// torch.Tensor.to(torch.bfloat16)); NaN stays a (quiet) NaN, infinities and signed zeros survive,
// floats beyond the largest bf16 round to infinity. To float is exact (a 16-bit shift).
// Kernels that read BF16 (kernels/panel_gemm.hpp) widen it to float and compute in float.
#pragma once
#include <cstdint>
#include <cstring>

namespace focus {

inline uint16_t bf16_bits_from_float(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_bits_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  template <class U>
  explicit BFloat16(U x) : bits(bf16_bits_from_float(static_cast<float>(x))) {}
  template <class U>
  explicit operator U() const { return static_cast<U>(bf16_bits_to_float(bits)); }
};
static_assert(sizeof(BFloat16) == 2);

}  // namespace focus
