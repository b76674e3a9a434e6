// The main of every test binary: GoogleTest's, after making OpenMP's idle threads wait passively
// (re-executing once with OMP_WAIT_POLICY=PASSIVE unless it is set, as the CLI does). ctest -j2
// runs two 2-thread tests on 2 cores, and spinning idle threads made them 4-10x slower.
// --focus-isa-rerun (CTest's FOCUS_FORCE_ISA reruns, CMakeLists.txt): when the forced ISA is the
// CPU's own, the rerun would repeat the plain run, so it runs nothing and prints gtest's skip
// marker, which CTest's SKIP_REGULAR_EXPRESSION turns into "Skipped" (not "Passed").
// Each process gets its own ::testing::TempDir() (TEST_TMPDIR = /tmp/focus-test-<pid>/, removed at
// the end): ctest -j2 runs a test and its avx2:/scalar: reruns at the same time, and tests that
// name their files within TempDir() must not share them.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "focus/kernels/cpu.hpp"

int main(int argc, char** argv) {
  focus::ensure_passive_omp_wait(argv);
  std::string tmp;
  if (!std::getenv("TEST_TMPDIR")) {
    tmp = "/tmp/focus-test-" + std::to_string(getpid()) + "/";
    std::filesystem::create_directories(tmp);
    setenv("TEST_TMPDIR", tmp.c_str(), 1);
  }
  ::testing::InitGoogleTest(&argc, argv);
  bool rerun = false;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--focus-isa-rerun") == 0) rerun = true;
  if (rerun && std::getenv("FOCUS_FORCE_ISA") && focus::active_isa() == focus::detect_isa()) {
    std::printf("[  SKIPPED ] FOCUS_FORCE_ISA=%s is this CPU's own ISA (%s): the plain run covers it\n",
                std::getenv("FOCUS_FORCE_ISA"), focus::isa_name(focus::detect_isa()).c_str());
    return 0;
  }
  const int rc = RUN_ALL_TESTS();
  if (!tmp.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  }
  return rc;
}
