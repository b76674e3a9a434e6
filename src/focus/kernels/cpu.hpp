// Run-time CPU facts: ISA level (for kernel dispatch and for choosing the BLAS core before the
// BLAS loads) and the thread policy. One policy for all parallel work: OpenMP, with the count from
// set_num_threads() (the CLI's --threads), else FOCUS_NUM_THREADS, else the number of cores. The
// BLAS runs inside that budget (never its own pool on top of OpenMP's).
#pragma once
#include <string>

namespace focus {

enum class Isa { Scalar, Avx2, Avx512 };
Isa detect_isa();          // what the CPU supports
Isa active_isa();          // detect_isa(), lowered by FOCUS_FORCE_ISA=scalar|avx2|avx512
std::string isa_name(Isa isa);

int num_threads();                 // current policy (a ScopedThreads on this thread overrides it)
void set_num_threads(int n);       // n >= 1; applies to OpenMP and the BLAS
int hardware_threads();            // cores the process may use

// For a scope on this thread only: num_threads() answers n and its parallel regions (focus's
// kernels, OpenMP, the BLAS, which follows OpenMP's count) use n threads; restored at exit. Small inference batches run on one
// thread this way: their parallel regions' wake-ups cost more than a second core gives
// (infer/image_predictor.cpp, infer/image_plan.cpp).
class ScopedThreads {
 public:
  explicit ScopedThreads(int n);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int was_, omp_was_;
};

// For programs' main(): unless OMP_WAIT_POLICY is set, sets it to PASSIVE and re-executes the
// program (libgomp reads it only when it loads). Idle OpenMP threads that spin cost this project's
// 2-vCPU machines dearly: cnn_se inference at batch 1 runs at 113 images/s spinning and 550
// passive (training at batch 128 is unchanged). Returns only if no re-exec happened.
void ensure_passive_omp_wait(char** argv);

}  // namespace focus
