// The fused attention's ISA paths a test may run here: the active ISA's and those below it
// (FOCUS_FORCE_ISA=avx2 on an AVX-512 machine runs no AVX-512 path, so it lists none).
#pragma once
#include <vector>

#include "focus/kernels/attention.hpp"
#include "focus/kernels/cpu.hpp"

namespace focus::testing {

inline std::vector<AttentionIsa> attention_isas() {
  std::vector<AttentionIsa> out{AttentionIsa::Scalar};
  const Isa cpu = active_isa();
  if (cpu == Isa::Avx2 || cpu == Isa::Avx512) out.push_back(AttentionIsa::Avx2);
  if (cpu == Isa::Avx512) out.push_back(AttentionIsa::Avx512);
  return out;
}

}  // namespace focus::testing
