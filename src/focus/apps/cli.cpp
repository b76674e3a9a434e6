// Placeholder CLI dispatch until the commands land.
#include "focus/apps/cli.hpp"

#include <cstdio>

namespace focus {
int run_cli(int, char**) {
  std::fprintf(stderr, "focus: no commands yet\n");
  return 2;
}
}  // namespace focus
