// Inverted-dropout kernel over a counter-based mask. The uniform of element i of a call with
// stream (seed, offset) is word i%4 of philox4x32(seed, 0, offset + i/4) mapped to [0, 1) by
// uint_to_unit_float: the i-th value Rng::fill_uniform would give from the same state. Element i
// is kept iff that uniform >= p, and kept values are scaled by 1/(1-p). The mask depends only on
// (seed, offset, i): not on the thread count, and the backward regenerates it. A call reserves
// dropout_counters(n) counters (Rng::advance). FOCUS_DROPOUT=reference (or
// set_dropout_reference) forces the scalar reference kernels.
// A training forward can also record the mask as bits (bit i%8 of bits[i/8], dropout_bit_bytes(n)
// bytes, 1/32 of an F32 tensor): its backward then applies them (dropout_apply_bits) instead of
// running Philox again, which halves dropout's cost in a training step.
#pragma once
#include <cstdint>

namespace focus {

inline uint64_t dropout_counters(int64_t n) { return static_cast<uint64_t>((n + 3) / 4); }
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
