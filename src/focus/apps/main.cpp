// The focus command line: a thin main over apps/cli.
#include "focus/apps/cli.hpp"
#include "focus/kernels/cpu.hpp"

int main(int argc, char** argv) {
  focus::ensure_passive_omp_wait(argv);
  return focus::run_cli(argc, argv);
}
