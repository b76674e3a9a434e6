// CPU feature detection and the thread policy (see cpu.hpp).
#include "focus/kernels/cpu.hpp"

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "focus/kernels/gemm.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

Isa detect_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
  return Isa::Scalar;
}

Isa active_isa() {
  static const Isa isa = [] {
    Isa hw = detect_isa();
    const char* f = std::getenv("FOCUS_FORCE_ISA");
    if (!f) return hw;
    Isa want = std::strcmp(f, "scalar") == 0 ? Isa::Scalar
               : std::strcmp(f, "avx2") == 0 ? Isa::Avx2
                                              : Isa::Avx512;
    return static_cast<int>(want) < static_cast<int>(hw) ? want : hw;
  }();
  return isa;
}

std::string isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

int hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return omp_get_num_procs();
}

namespace {
int initial_threads() {
  if (const char* e = std::getenv("FOCUS_NUM_THREADS")) {
    const int n = std::atoi(e);
    if (n >= 1) return n;
  }
  return hardware_threads();
}
int g_threads = 0;
thread_local int t_scoped = 0;  // a ScopedThreads count on this thread, 0 for none
}  // namespace

// Apply the policy before any parallel region runs, so FOCUS_NUM_THREADS binds OpenMP too.
[[maybe_unused]] const int g_policy_applied = (num_threads(), 0);

void ensure_passive_omp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // on failure, carry on with the active policy
}

int num_threads() {
  if (g_threads == 0) set_num_threads(initial_threads());
  return t_scoped ? t_scoped : g_threads;
}

// OpenMP's count is per thread (an ICV of the calling thread), OpenBLAS's OpenMP build follows it
// at every call, and focus's kernels read num_threads(): all three change for this thread only.
ScopedThreads::ScopedThreads(int n) : was_(t_scoped), omp_was_(omp_get_max_threads()) {
  FOCUS_CHECK(n >= 1, ValueError, "ScopedThreads: need at least 1 thread, got {}", n);
  num_threads();  // the policy applied first
  t_scoped = n;
  omp_set_num_threads(n);
}
ScopedThreads::~ScopedThreads() {
  t_scoped = was_;
  omp_set_num_threads(omp_was_);
}

void set_num_threads(int n) {
  FOCUS_CHECK(n >= 1, ValueError, "set_num_threads: need at least 1 thread, got {}", n);
  g_threads = n;
  omp_set_num_threads(n);
  blas_set_num_threads(n);
}

}  // namespace focus
