// oneDNN's process-wide settings: the ISA cap FOCUS_FORCE_ISA asks for is in force, and the
// forced scalar runs keep oneDNN out.
#include <gtest/gtest.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/onednn.hpp"

using namespace focus;

TEST(OneDnn, FollowsTheActiveIsa) {
  onednn_init();
  onednn_init();  // idempotent
  EXPECT_EQ(onednn_enabled(), active_isa() != Isa::Scalar);
  const unsigned effective = unsigned(dnnl::get_effective_cpu_isa());
  const unsigned avx512 = unsigned(dnnl::cpu_isa::avx512_core);
  if (active_isa() == Isa::Avx2) {  // capped: no AVX-512 kernel may run
    EXPECT_NE(effective & avx512, avx512) << "oneDNN runs AVX-512 under FOCUS_FORCE_ISA=avx2";
  }
  if (active_isa() == Isa::Avx512) { EXPECT_EQ(effective & avx512, avx512); }
}
