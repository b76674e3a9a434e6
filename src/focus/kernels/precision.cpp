// The process-wide compute precision and the float -> bfloat16 rounding (see precision.hpp).
#include "focus/kernels/precision.hpp"

#include <cpuid.h>

#include <atomic>
#include <cstring>

#include "focus/kernels/cpu.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

std::atomic<Precision> g_precision{Precision::F32};

// CPUID leaf 7: sub-leaf 1 EAX bit 5 is AVX512_BF16, sub-leaf 0 EDX bit 22 AMX-BF16.
bool cpu_bf16() {
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  const bool amx_bf16 = (d >> 22) & 1u;
  const unsigned max_sub = a;
  bool avx512_bf16 = false;
  if (max_sub >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    avx512_bf16 = (a >> 5) & 1u;
  }
  return avx512_bf16 || amx_bf16;
}

inline uint32_t rounded_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  const uint32_t nan = (u | 0x00400000u) & 0xffff0000u;  // a quiet NaN keeps its sign
  return (u & 0x7fffffffu) > 0x7f800000u ? nan : r;
}

}  // namespace

Precision compute_precision() { return g_precision.load(std::memory_order_relaxed); }
void set_compute_precision(Precision p) { g_precision.store(p, std::memory_order_relaxed); }

const char* precision_name(Precision p) { return p == Precision::Bf16 ? "bf16" : "f32"; }

Precision parse_precision(std::string_view name) {
  if (name == "f32") return Precision::F32;
  if (name == "bf16") return Precision::Bf16;
  throw ValueError(fmt::format("unknown precision '{}' (expected f32 or bf16)", name));
}

bool bf16_hardware() {
  static const bool hw = cpu_bf16();
  return hw && active_isa() == Isa::Avx512;
}

void check_precision_supported(Precision p) {
  if (p != Precision::Bf16 || bf16_hardware()) return;
  const bool forced = active_isa() != detect_isa();
  throw ValueError(fmt::format(
      "precision bf16 needs a CPU with AVX512-BF16 or AMX-BF16 running AVX-512 code; {} (active "
      "ISA {}): bf16 would only be emulated, slower than f32. Use --precision f32",
      forced ? "FOCUS_FORCE_ISA lowered this CPU" : "this CPU has neither", isa_name(active_isa())));
}

Precision supported_precision(std::string_view name) {
  const Precision p = parse_precision(name);
  check_precision_supported(p);
  return p;
}

void round_to_bf16(float* dst, const float* src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t r = rounded_bits(src[i]);
    std::memcpy(&dst[i], &r, sizeof r);
  }
}

void to_bf16_bits(uint16_t* dst, const float* src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint16_t>(rounded_bits(src[i]) >> 16);
}

}  // namespace focus
