// The main of every test binary: GoogleTest's, after making OpenMP's idle threads wait passively
// (re-executing once with OMP_WAIT_POLICY=PASSIVE unless it is set, as the CLI does). ctest -j2
// runs two 2-thread tests on 2 cores, and spinning idle threads made them 4-10x slower.
// --focus-isa-rerun (CTest's FOCUS_FORCE_ISA reruns, CMakeLists.txt): when the forced ISA is the
// CPU's own, the rerun would repeat the plain run, so every test skips with the reason.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "focus/kernels/cpu.hpp"

namespace {

class SkipDuplicateIsaRun : public ::testing::Environment {
 public:
  void SetUp() override {
    GTEST_SKIP() << "FOCUS_FORCE_ISA=" << std::getenv("FOCUS_FORCE_ISA") << " is this CPU's own ISA ("
                 << focus::isa_name(focus::detect_isa()) << "): the plain run covers it";
  }
};

}  // namespace

int main(int argc, char** argv) {
  focus::ensure_passive_omp_wait(argv);
  ::testing::InitGoogleTest(&argc, argv);
  bool rerun = false;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--focus-isa-rerun") == 0) rerun = true;
  if (rerun && std::getenv("FOCUS_FORCE_ISA") && focus::active_isa() == focus::detect_isa())
    ::testing::AddGlobalTestEnvironment(new SkipDuplicateIsaRun);
  return RUN_ALL_TESTS();
}
