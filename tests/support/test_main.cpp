// The main of every test binary: GoogleTest's, after making OpenMP's idle threads wait passively
// (re-executing once with OMP_WAIT_POLICY=PASSIVE unless it is set, as the CLI does). ctest -j2
// runs two 2-thread tests on 2 cores, and spinning idle threads made them 4-10x slower.
#include <gtest/gtest.h>

#include "focus/kernels/cpu.hpp"

int main(int argc, char** argv) {
  focus::ensure_passive_omp_wait(argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
