// Inverted-dropout kernel over a counter-based mask. Element i of a call with stream
// (seed, offset) draws the 16-bit half i % 2 (low half first) of word (i / 2) % 4 of
// philox4x32(seed, 0, offset + i / 8): eight elements a Philox block, twice what one uniform an
// element would give, which halves the generator's cost (its 10 rounds are most of a dropout
// forward). Element i is kept iff half / 2^16 >= p (so the keep probability is 1 - p rounded up
// to the 2^-16 grid), and kept values are scaled by 1/(1-p). The mask depends only on
// (seed, offset, i): not on the thread count. A call reserves dropout_counters(n) counters
// (Rng::advance). FOCUS_DROPOUT=reference (or set_dropout_reference) forces the scalar reference
// kernels.
// A training forward can also record the mask as bits (bit i%8 of bits[i/8], dropout_bit_bytes(n)
// bytes, 1/32 of an F32 tensor): its backward then applies them (dropout_apply_bits) instead of
// running Philox again, which halves dropout's cost in a training step.
#pragma once
#include <cstdint>

namespace focus {

inline constexpr int64_t kDropoutPerCounter = 8;  // elements a Philox counter decides
inline uint64_t dropout_counters(int64_t n) {
  return static_cast<uint64_t>((n + kDropoutPerCounter - 1) / kDropoutPerCounter);
}
inline int64_t dropout_bit_bytes(int64_t n) { return (n + 7) / 8; }

void set_dropout_reference(bool on);
bool dropout_reference();

// out[i] = keep(i) ? in[i] / (1 - p) : 0, 0 <= p < 1. Forward (in = x) and backward (in = dout)
// are the same map. out may alias in. bits (optional): also record keep(i) as above. Dispatches to
// avx512 or avx2 (the best active_isa() has), else lanes, or to the reference when forced.
template <class T>
void dropout_apply(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                   uint8_t* bits = nullptr);
// The kernels themselves (dropout_apply_avx512 needs an AVX-512 CPU, dropout_apply_avx2 AVX2).
template <class T>
void dropout_apply_avx512(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                          uint8_t* bits = nullptr);
template <class T>
void dropout_apply_avx2(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                        uint8_t* bits = nullptr);
template <class T>
void dropout_apply_lanes(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                         uint8_t* bits = nullptr);
template <class T>
void dropout_apply_reference(T* out, const T* in, int64_t n, uint64_t seed, uint64_t offset, double p,
                             uint8_t* bits = nullptr);

// out[i] = bit i of bits ? in[i] / (1 - p) : 0: bit for bit what dropout_apply gives for the mask
// the bits recorded. out may alias in. AVX2 where active_isa() has it, else (or when the reference
// is forced) the plain loop dropout_apply_bits_reference.
template <class T>
void dropout_apply_bits(T* out, const T* in, int64_t n, const uint8_t* bits, double p);
template <class T>
void dropout_apply_bits_avx2(T* out, const T* in, int64_t n, const uint8_t* bits, double p);
template <class T>
void dropout_apply_bits_reference(T* out, const T* in, int64_t n, const uint8_t* bits, double p);

}  // namespace focus
